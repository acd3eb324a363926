"""Sphinx configuration for soabi-shim (furo theme, MyST Markdown pages).

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Document this checkout, not whatever soabi-shim happens to be installed.
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(HERE, "_ext"))

import soabi_shim  # noqa: E402

project = "soabi-shim"
author = "soabi-shim developers"
copyright = "2026, soabi-shim developers"
release = soabi_shim.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "soabi_shim_cli",  # docs/_ext/soabi_shim_cli.py: the CLI reference from build_parser()
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"soabi-shim {release}"
html_static_path: list[str] = []
