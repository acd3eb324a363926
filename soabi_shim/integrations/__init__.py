"""Integrations with installers that offer a hook (PDM, Poetry)."""
