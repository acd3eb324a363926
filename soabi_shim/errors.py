"""The exceptions soabi-shim raises on purpose.

Every expected failure is one of these; the CLI maps them to an ``ERROR``
line and an exit code in one place (:func:`soabi_shim.cli.main`).
"""

from __future__ import annotations


class SoabiShimError(Exception):
    """Base class of every error soabi-shim raises on purpose."""


class UsageError(SoabiShimError):
    """Bad arguments or bad input named by the user (exit code 2)."""


class SuffixError(SoabiShimError, ValueError):
    """A file name or suffix is not a Linux extension-module suffix."""


class ElfError(SoabiShimError):
    """A file is not a well-formed ELF object."""


class RecordError(SoabiShimError):
    """A RECORD file cannot be parsed or updated safely."""


class InterpreterError(SoabiShimError):
    """Facts about an interpreter could not be gathered."""


class SiteError(SoabiShimError):
    """A path in a site directory cannot be used safely (see ``sitefs``)."""


class OutsideError(SiteError):
    """A path or symlink leads out of the site directory; not followed."""


class NotRegularError(SiteError):
    """A file to be read is not a regular file (FIFO, device, symlink, ...)
    or is larger than the bound."""
