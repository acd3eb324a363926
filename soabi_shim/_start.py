"""The start-up hook's decision, kept tiny: imported only when there is work.

Two ways in:

* the ``.pth`` line (:data:`soabi_shim._startup.PTH_LINE`) already tested the
  stamp and calls :func:`run` with its ``sitedir`` only when the stamp is
  missing or the process is an installer (pip, ``python -m installer``);
* Python 3.15+ (PEP 829) calls :func:`start` with no arguments, from the
  matching ``soabi_shim-startup.start`` file, after every ``.pth`` path line
  is processed.  It finds the site directory from this file's location, tests
  the same stamp and goes on only when there is work.

Then: an installer process registers a heal for its exit
(:func:`soabi_shim._startup.heal_at_exit`); a ``_fb`` stamp, a site this
process may not write, or ``SOABI_SHIM_FALLBACK_ONLY`` install the import
fallback only (:mod:`soabi_shim.fallback`); anything else heals the site
(:func:`soabi_shim._startup.heal_start`).

Nothing here prints, and no exception but ``KeyboardInterrupt`` leaves it.
Imports: ``os``, ``sys`` and the leaf :mod:`soabi_shim._names`.
"""

import os
import sys

from ._names import DISABLE_ENV, FALLBACK_ONLY_ENV, PACKAGE_DIR, START_NAME, stamp_name

#: Site directories handled in this process (a venv reads its ``.pth`` files
#: twice: the second pass stops here).  Keyed per site directory, so a
#: ``--system-site-packages`` venv's base site is handled by its own hook.
SEEN: "set[str]" = set()
#: :func:`start` (the PEP 829 entry point) ran in this process.
STARTED = False

_INSTALLER_MODULES = ("pip", "installer")


def is_musl() -> bool:
    """The one "is this musl" decision of the hook (tests patch it).

    ``sys.thread_info.version`` is glibc's ``confstr(_CS_GNU_LIBPTHREAD_VERSION)``
    (``"NPTL 2.36"``), read at start-up; musl has no answer (None).  The
    ``.pth`` line makes the same test inline.
    """
    return sys.platform == "linux" and not sys.thread_info.version


def start() -> None:
    """PEP 829 entry point (``soabi_shim-startup.start``): no arguments, at most once per start."""
    global STARTED
    try:
        if STARTED:
            return
        STARTED = True
        if not is_musl():
            return
        for site in _hook_sites():
            if _installer() or not os.path.exists(_stamp(site, False)):
                run(site)
    except KeyboardInterrupt:
        raise
    except BaseException:  # never end or disturb the interpreter
        pass


def _hook_sites() -> "list[str]":
    """The site directories holding the ``.start`` file: this module's own
    first (found from ``__file__``), then any other on ``sys.path`` (an
    editable install, or soabi-shim in both sites of a ``--system-site-packages``
    venv: each site's hook heals its own directory)."""
    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sites = [own] if os.path.exists(os.path.join(own, START_NAME)) else []
    for entry in sys.path:
        if entry and entry not in sites and entry != own and os.path.exists(os.path.join(entry, START_NAME)):
            sites.append(entry)
    return sites


def _stamp(sitedir: str, problems: bool) -> str:
    return os.path.join(sitedir, PACKAGE_DIR, stamp_name(os.stat(sitedir).st_mtime_ns, problems))


def run(sitedir: str) -> None:
    """The slow path for one site directory; never raises (but ``KeyboardInterrupt``)."""
    try:
        _run(sitedir)
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass


def _run(sitedir: str) -> None:
    if sitedir in SEEN or os.environ.get(DISABLE_ENV) or not is_musl():
        return
    SEEN.add(sitedir)
    if _installer():
        from ._startup import heal_at_exit

        heal_at_exit(sitedir, may_heal)
        return
    if os.path.exists(_stamp(sitedir, False)):
        return
    if os.environ.get(FALLBACK_ONLY_ENV) or os.path.exists(_stamp(sitedir, True)) or not may_heal(sitedir):
        from .fallback import install

        install()
        return
    from ._startup import heal_start

    heal_start(sitedir)


def may_heal(sitedir: str) -> bool:
    """This process may heal ``sitedir`` and keep its stamp: it can write the
    site directory and the stamp's directory, and set the site directory's
    mtime back after its own writes (owner or root)."""
    try:
        euid = os.geteuid()
        if euid != 0 and os.stat(sitedir).st_uid != euid:
            return False
        pkg = os.path.join(sitedir, PACKAGE_DIR)
        writable = os.W_OK | os.X_OK
        return os.access(sitedir, writable) and (not os.path.lexists(pkg) or os.access(pkg, writable))
    except OSError:
        return False


def _installer() -> bool:
    """This process is pip (its scripts, ``python -m pip``, pip's own
    ``__pip-runner__.py``) or ``python -m installer``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":
        return _module_of(_command_line()) in _INSTALLER_MODULES
    name = os.path.basename(argv0)
    if name == "__pip-runner__.py":
        return True
    return name.startswith("pip") and (name == "pip" or name[3:].replace(".", "").isdigit())


def _command_line() -> "list[str]":
    """The interpreter's own arguments: ``sys.orig_argv`` (3.10+), else ``/proc``."""
    orig = getattr(sys, "orig_argv", None)
    if orig is not None:
        return list(orig)
    fd = os.open("/proc/self/cmdline", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    return os.fsdecode(data).split("\0")


def _module_of(argv: "list[str]") -> "str | None":
    """The module of ``python [options] -m MODULE``, or None."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-" or arg == "--":
            return None
        if arg.startswith("--"):  # --check-hash-based-pycs takes a value
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        for j in range(1, len(arg)):
            flag = arg[j]
            if flag in "mc":
                if flag == "c":
                    return None
                rest = arg[j + 1 :]
                if rest:
                    return rest
                return argv[i + 1] if i + 1 < len(argv) else None
            if flag in "WX":
                if j + 1 == len(arg):
                    i += 1  # the value is the next argument
                break
        i += 1
    return None
