"""ACME Linux's soabi-shim plugins (see the two modules)."""
