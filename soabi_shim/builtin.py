"""The built-in plugin: libc twins, path containment and ELF checks."""

from __future__ import annotations

import os
from typing import Optional

from .elf import read_elf, refusal
from .errors import ElfError
from .facts import InterpreterFacts
from .hookspecs import Verdict, hookimpl
from .plan import Candidate, inside
from .suffixes import ExtSuffix, twin_suffixes


@hookimpl
def soabi_shim_twin_suffixes(accepted: ExtSuffix, facts: InterpreterFacts) -> list[str]:
    return [str(t) for t in twin_suffixes(accepted)]


@hookimpl(tryfirst=True)
def soabi_shim_check_candidate(candidate: Candidate, facts: InterpreterFacts) -> Optional[Verdict]:
    return check_location(candidate) or check_elf(candidate.path, facts)


def check_location(candidate: Candidate) -> Optional[Verdict]:
    """The directory written to must really be inside the site directory."""
    if not inside(os.path.dirname(candidate.path), candidate.site):
        return Verdict.refuse("its directory resolves outside the site directory; not followed")
    return None


def check_elf(path: str, facts: InterpreterFacts) -> Optional[Verdict]:
    """An ELF shared object for this machine, linked to this libc or none."""
    try:
        reason = refusal(read_elf(path), facts.elf, facts.libc)
    except ElfError as exc:
        reason = str(exc)
    return None if reason is None else Verdict.refuse(reason)
