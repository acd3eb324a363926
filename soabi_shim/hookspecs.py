"""The plugin API: hook specifications (pluggy project name ``soabi_shim``).

Third-party plugins register through the entry-point group ``soabi_shim``::

    [project.entry-points.soabi_shim]
    mydistro = "mydistro_soabi"

and implement any of these hooks with :data:`hookimpl`.  The built-in
behaviour (:mod:`soabi_shim.builtin`) is a plugin of this same API.
Failing closed (:meth:`soabi_shim.plugins.PluginHost.check`): a plugin
that raises in ``soabi_shim_check_candidate`` (any ``BaseException`` but
``KeyboardInterrupt``) refuses that candidate; one that fails to load or
implements an unknown hook refuses every candidate of the run.  Either is
reported as a problem of the run; neither ends the run or the
interpreter's start-up.
"""

from __future__ import annotations

from ._plain import Frozen

# pluggy is imported only when a plugin is actually there (see
# :class:`soabi_shim.plugins.PluginHost`): the markers below are made on
# first use, and the hook specifications are marked then.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Optional

    import pluggy

    from .facts import InterpreterFacts
    from .report import Report
    from .scan import Candidate
    from .suffixes import ExtSuffix


class Verdict(Frozen):
    """A plugin's opinion on one candidate."""

    _fields = ("ok", "reason")
    __slots__ = _fields
    ok: bool
    reason: str

    def __init__(self, ok: bool, reason: str) -> None:
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "reason", reason)

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(False, reason)

    @classmethod
    def approve(cls, reason: str) -> Verdict:
        return cls(True, reason)


if TYPE_CHECKING:
    hookspec: pluggy.HookspecMarker
    hookimpl: pluggy.HookimplMarker


def __getattr__(name: str) -> object:
    # ``hookimpl`` and ``hookspec``, made (with pluggy imported) on first use.
    if name not in ("hookimpl", "hookspec"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import pluggy

    g = globals()
    if "hookspec" not in g:
        spec = pluggy.HookspecMarker("soabi_shim")
        for fn in SPECS:
            spec(fn)
        g["hookspec"] = spec
        g["hookimpl"] = pluggy.HookimplMarker("soabi_shim")
    return g[name]


def soabi_shim_twin_suffixes(accepted: ExtSuffix, facts: InterpreterFacts) -> Iterable[str]:
    """Foreign suffixes that may be aliased to the accepted suffix ``accepted``.

    Return suffix strings such as ``".cpython-311-x86_64-linux-gnu.so"``.
    The built-in plugin returns the libc twins; a distro with its own SOABI
    spelling returns that spelling here.  Results of all plugins are merged.
    """
    raise NotImplementedError


def soabi_shim_check_candidate(candidate: Candidate, facts: InterpreterFacts) -> Optional[Verdict]:
    """Approve or veto one alias before it is made.

    Return ``Verdict.refuse(reason)`` to veto, ``Verdict.approve(reason)`` to
    note an approval, or ``None`` for no opinion.  Any veto wins: an
    approval never overrides another plugin's (or a built-in safety) veto.
    """
    raise NotImplementedError


def soabi_shim_report(report: Report) -> None:
    """Called after each heal, check, undo, doctor or install with its report."""


#: The hook specifications, marked by :func:`__getattr__` (pluggy's
#: ``add_hookspecs(hookspecs)`` then finds them).
SPECS = (soabi_shim_twin_suffixes, soabi_shim_check_candidate, soabi_shim_report)
