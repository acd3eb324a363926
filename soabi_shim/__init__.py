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
    from .image import image_facts
    from .report import Alias, Problem, Report

_LAZY = {
    "SoabiShimError": "errors",
    "UsageError": "errors",
    "InterpreterFacts": "facts",
    "gather_facts": "facts",
    "image_facts": "image",
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
    "image_facts",
    "hookimpl",
    "undo",
]

__version__ = "0.1.0"


def _run(
    command: str,
    paths: "Optional[Sequence[str]]",
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    root: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """:func:`soabi_shim.pipeline.run`, with the facts read from ``root`` when given."""
    from .pipeline import run

    if root is None:
        return run(command, paths, dry_run=dry_run, include_unowned=include_unowned, python=python, plugins=plugins)
    from .image import image_facts, resolve_in_root
    from .plugins import get_plugin_host

    facts = image_facts(root, python)
    inside = [resolve_in_root(facts.root or root, p) for p in paths] if paths else None
    # No installed plugin is loaded under ``root``: its code would be the build
    # host's or the image's, neither of which speaks for the target.
    host = get_plugin_host(plugins, entry_points=False)
    return run(command, inside, dry_run=dry_run, include_unowned=include_unowned, facts=facts, host=host)


def heal(
    paths: "Optional[Sequence[str]]" = None,
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    root: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Create and record the missing aliases in ``paths`` (default: every site dir).

    ``root``: work on a target root file system (paths and ``python`` are
    then paths inside it); its interpreter's facts are read as data.
    """
    return _run(
        "heal", paths, dry_run=dry_run, include_unowned=include_unowned, python=python, root=root, plugins=plugins
    )


def check(
    paths: "Optional[Sequence[str]]" = None,
    *,
    include_unowned: bool = True,
    python: "Optional[str]" = None,
    root: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Will every extension module in ``paths`` load?  Reports what
    :func:`heal` would do; changes nothing.

    Files no RECORD lists are covered too (``include_unowned=True``): an
    alias such a file needs is pending (``report.ok`` is False), and
    ``heal(include_unowned=True)`` makes it.
    """
    return _run("check", paths, include_unowned=include_unowned, python=python, root=root, plugins=plugins)


def undo(
    paths: "Optional[Sequence[str]]" = None,
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: "Optional[str]" = None,
    root: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Remove exactly the aliases soabi-shim made, and their RECORD rows."""
    return _run(
        "undo", paths, dry_run=dry_run, include_unowned=include_unowned, python=python, root=root, plugins=plugins
    )


def doctor(
    paths: "Optional[Sequence[str]]" = None,
    *,
    python: "Optional[str]" = None,
    root: "Optional[str]" = None,
    plugins: "Optional[list[object]]" = None,
) -> "Report":
    """Facts plus every extension the interpreter cannot load by its name."""
    return _run("doctor", paths, python=python, root=root, plugins=plugins)
