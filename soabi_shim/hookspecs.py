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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import pluggy

if TYPE_CHECKING:
    from .facts import InterpreterFacts
    from .report import Report
    from .scan import Candidate
    from .suffixes import ExtSuffix


@dataclass(frozen=True)
class Verdict:
    """A plugin's opinion on one candidate."""

    ok: bool
    reason: str

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(False, reason)

    @classmethod
    def approve(cls, reason: str) -> Verdict:
        return cls(True, reason)


hookspec = pluggy.HookspecMarker("soabi_shim")
hookimpl = pluggy.HookimplMarker("soabi_shim")


@hookspec
def soabi_shim_twin_suffixes(accepted: ExtSuffix, facts: InterpreterFacts) -> Iterable[str]:
    """Foreign suffixes that may be aliased to the accepted suffix ``accepted``.

    Return suffix strings such as ``".cpython-311-x86_64-linux-gnu.so"``.
    The built-in plugin returns the libc twins; a distro with its own SOABI
    spelling returns that spelling here.  Results of all plugins are merged.
    """
    raise NotImplementedError


@hookspec
def soabi_shim_check_candidate(candidate: Candidate, facts: InterpreterFacts) -> Optional[Verdict]:
    """Approve or veto one alias before it is made.

    Return ``Verdict.refuse(reason)`` to veto, ``Verdict.approve(reason)`` to
    note an approval, or ``None`` for no opinion.  Any veto wins: an
    approval never overrides another plugin's (or a built-in safety) veto.
    """
    raise NotImplementedError


@hookspec
def soabi_shim_report(report: Report) -> None:
    """Called after each heal, check, undo, doctor or install with its report."""
