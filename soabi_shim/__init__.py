"""soabi-shim: make extension modules named for the other libc load on Linux.

The Python API is a thin layer over the one pipeline (:mod:`soabi_shim.pipeline`)::

    import soabi_shim
    report = soabi_shim.heal()              # every site dir of this interpreter
    report = soabi_shim.check(["/venv/lib/python3.11/site-packages"])
    if not report.ok: ...

The library never prints; the CLI formats reports.
"""

# Keep this module free of imports (typing included): the start-up hook
# imports ``soabi_shim._startup``, which runs this file first.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

    from .errors import SoabiShimError, UsageError
    from .facts import InterpreterFacts, gather_facts
    from .hookspecs import Verdict, hookimpl
    from .report import Alias, Problem, Report

_LAZY = {
    "SoabiShimError": "errors",
    "UsageError": "errors",
    "InterpreterFacts": "facts",
    "gather_facts": "facts",
    "hookimpl": "hookspecs",
    "Verdict": "hookspecs",
    "Alias": "report",
    "Problem": "report",
    "Report": "report",
}


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'soabi_shim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Alias",
    "InterpreterFacts",
    "Problem",
    "Report",
    "SoabiShimError",
    "UsageError",
    "Verdict",
    "__version__",
    "check",
    "doctor",
    "gather_facts",
    "heal",
    "hookimpl",
    "undo",
]

__version__ = "0.1.0"


def heal(
    paths: "Optional[Sequence[str]]" = None,
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Create and record the missing aliases in ``paths`` (default: every site dir)."""
    from .pipeline import run

    return run("heal", paths, dry_run=dry_run, include_unowned=include_unowned, python=python, plugins=plugins)


def check(
    paths: "Optional[Sequence[str]]" = None,
    *,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Report what :func:`heal` would do; changes nothing."""
    from .pipeline import run

    return run("check", paths, include_unowned=include_unowned, python=python, plugins=plugins)


def undo(
    paths: "Optional[Sequence[str]]" = None,
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Remove exactly the aliases soabi-shim made, and their RECORD rows."""
    from .pipeline import run

    return run("undo", paths, dry_run=dry_run, include_unowned=include_unowned, python=python, plugins=plugins)


def doctor(
    paths: "Optional[Sequence[str]]" = None, *, python: "Optional[str]" = None, plugins: "Optional[list[object]]" = None
) -> "Report":
    """Facts plus every extension the interpreter cannot load by its name."""
    from .pipeline import run

    return run("doctor", paths, python=python, plugins=plugins)
