"""The built-in rules: libc twins, path containment and ELF checks.

Registered as the plugin named ``builtin``, but :meth:`PluginHost.check
<soabi_shim.plugins.PluginHost.check>` runs :func:`soabi_shim_check_candidate`
itself, outside the plugin isolation: an exception here refuses the
candidate.  Imports only floors below (``elf``, ``suffixes``, ``hookspecs``);
the candidate and facts are duck-typed (``path``, ``site``; ``elf``, ``libc``).
"""

from __future__ import annotations

import os

from .elf import read_elf, refusal
from .errors import ElfError
from .hookspecs import Verdict
from .suffixes import twin_suffixes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .facts import InterpreterFacts
    from .scan import Candidate
    from .suffixes import ExtSuffix


# The two hook implementations carry no pluggy marker here (pluggy is not
# imported unless a plugin is installed): PluginHost calls them directly, or
# marks them (:data:`IMPL_OPTS`) when it builds a pluggy manager.


def soabi_shim_twin_suffixes(accepted: ExtSuffix, facts: InterpreterFacts) -> list[str]:
    return [str(t) for t in twin_suffixes(accepted)]


def soabi_shim_check_candidate(candidate: Candidate, facts: InterpreterFacts) -> Optional[Verdict]:
    return check_location(candidate) or check_elf(candidate.path, facts)


#: The hook implementations above, each with pluggy's ``tryfirst``.
IMPL_OPTS: dict[str, bool] = {
    "soabi_shim_twin_suffixes": False,
    "soabi_shim_check_candidate": True,
}


#: Where the kernel shows what each open descriptor names.
PROC_FD = "/proc/self/fd/"
_DIR_PATH_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def real_dir(path: str) -> str:
    """The real path of the directory ``path``, as the kernel resolved it.

    Opened with ``O_PATH`` and read back from ``/proc/self/fd``: three system
    calls, against an ``lstat`` per component (and Python work) for
    ``os.path.realpath``, which this falls back to where ``/proc`` is not
    mounted, for a directory that was removed meanwhile, or when ``path`` is
    not a directory.
    """
    try:
        fd = os.open(path, _DIR_PATH_FLAGS)
    except OSError:
        return os.path.realpath(path)
    try:
        real = os.readlink(f"{PROC_FD}{fd}")
    except OSError:
        real = ""
    finally:
        os.close(fd)
    if not real.startswith("/") or real.endswith(" (deleted)"):
        return os.path.realpath(path)
    return real


def resolves_inside(path: str, site: str) -> bool:
    """True if the real path of the directory ``path`` is ``site``'s real path or below it.

    A real path that starts with ``site`` itself needs no second look: the
    kernel resolved every one of its components to a directory, so ``site``
    (absolute, normalised, as the pipeline gives it) named a real directory
    at that moment and ``path`` was in it.  Only otherwise (a site reached
    through a symlink, or a path outside) is ``site`` resolved as well: for
    3,000 candidates in one site, 9,000 system calls fewer.
    """
    real = real_dir(path)
    if real == site or real.startswith(site + os.sep):
        return True
    root = real_dir(site)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_location(candidate: Candidate) -> Optional[Verdict]:
    """The directory written to must really be inside the site directory.

    A second line of defence: the engine keeps every write inside the site
    by construction; this refuses a candidate whose directory resolves
    outside it before anything else is looked at.
    """
    if not resolves_inside(os.path.dirname(candidate.path), candidate.site):
        return Verdict.refuse("its directory resolves outside the site directory; not followed")
    return None


def check_elf(path: str, facts: InterpreterFacts) -> Optional[Verdict]:
    """An ELF shared object for this machine, linked to this libc or none."""
    try:
        reason = refusal(read_elf(path), facts.elf, facts.libc)
    except ElfError as exc:
        reason = str(exc)
    return None if reason is None else Verdict.refuse(reason)
