"""The start-up hook: the ``.pth`` line, the heal at start and at an installer's exit, the stamp.

The fast path lives in the ``.pth`` line itself (:data:`PTH_LINE`).  On
glibc it is one short expression.  On musl it tests, with one
``os.path.exists``, a stamp whose *name* carries the site directory's
``st_mtime_ns`` (:func:`soabi_shim._names.stamp_name`); when it is there and
the process is not an installer, nothing else runs and nothing is imported.
Otherwise the line imports the tiny :mod:`soabi_shim._start`, which decides:

1. inside pip or ``python -m installer``: :func:`heal_at_exit` registers an
   exit handler that heals the site directory after the install and writes
   the stamp, so when the installer returns every alias is on disk and in
   RECORD and the next start takes the fast path;
2. a ``_fb`` stamp (the last heal left problems), a site directory this
   process may not write, or ``SOABI_SHIM_FALLBACK_ONLY``: the import
   fallback only (:mod:`soabi_shim.fallback`);
3. anything else: :func:`heal_start` heals the site directory with the same
   pipeline as ``soabi-shim heal`` and writes the stamp.

Nothing here prints, and no exception but ``KeyboardInterrupt`` escapes into
the interpreter (or out of the installer's exit).
"""

import os
import sys

from ._names import PACKAGE_DIR, PTH_NAME, STAMP_FALLBACK, STAMP_OK, is_stamp_name, stamp_name

# No typing import at run time: annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .report import Report

#: The single line of ``soabi_shim-startup.pth`` (a test keeps the shipped
#: file equal).  Every start compiles it (twice in a venv, which reads
#: site-packages' ``.pth`` files twice), so it is one expression with as few
#: nodes as will do:
#:
#: * ``sys.thread_info.version`` is glibc's ``NPTL 2.x`` (None on musl):
#:   glibc stops here, as does any other platform;
#: * on musl, the stamp named for the site directory's mtime exists, and the
#:   process is not an installer (``'pip' not in argv0 != '-m'`` reads
#:   "argv0 does not contain pip, and argv0 is not -m": during ``site``,
#:   ``sys.argv`` is ``['-m']`` for ``python -m ...`` and the script path
#:   for pip's scripts): stop;
#: * else :func:`soabi_shim._start.run` decides.  Only this slow path
#:   compiles a second string, for the ``try`` that keeps an import error
#:   (a broken install) silent.
#:
#: ``sitedir`` is the local variable of ``site.addpackage`` naming the
#: ``.pth`` file's directory.  Python 3.15+ skips this line: the matching
#: ``.start`` file (:data:`START_LINE`) replaces it (PEP 829).
PTH_LINE = (
    "import os, sys; sys.thread_info.version or sys.platform != 'linux'"
    f" or os.path.exists(sitedir + '/{PACKAGE_DIR}/{STAMP_OK}%d' % os.stat(sitedir).st_mtime_ns)"
    " and 'pip' not in sys.argv[0] != '-m'"
    " or exec(\"try: __import__('soabi_shim._start')._start.run(sitedir)\\nexcept Exception: pass\")\n"
)
#: The PEP 829 entry point (``soabi_shim-startup.start``).
START_LINE = "soabi_shim._start:start\n"


def __getattr__(name: str) -> object:
    # Compatibility: ``FALLBACK_INSTALLED`` moved to :mod:`soabi_shim.fallback`.
    if name == "FALLBACK_INSTALLED":
        fallback = sys.modules.get("soabi_shim.fallback")
        return bool(getattr(fallback, "INSTALLED", False))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install_fallback() -> bool:
    """Install the import fallback (see :func:`soabi_shim.fallback.install`)."""
    from .fallback import install

    return install()


# --- heal at start ------------------------------------------------------------


def heal_start(sitedir: str) -> None:
    """Heal ``sitedir`` now and write its stamp; the import fallback serves
    this process if the heal left problems or could not run."""
    ok = False
    try:
        report = heal_site(sitedir)
        ok = report is not None and not report.problems
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass
    if not ok:
        try:
            install_fallback()
        except KeyboardInterrupt:
            raise
        except BaseException:
            pass


def _import_pipeline() -> "tuple[object, object]":
    """``pipeline.run`` and ``plugins.get_plugin_host``, even while ``site``
    is still adding directories: in a ``--system-site-packages`` venv
    soabi-shim's dependencies may live in the base site, which is not on
    ``sys.path`` yet when the venv's hook runs."""
    try:
        from .pipeline import run
        from .plugins import get_plugin_host
    except ImportError:
        import site

        extra = []
        try:
            dirs = list(site.getsitepackages())
            if site.ENABLE_USER_SITE:
                dirs.append(site.getusersitepackages())
        except Exception:
            raise ImportError("soabi-shim's dependencies are not importable") from None
        for d in dirs:
            if d not in sys.path and os.path.isdir(d):
                sys.path.append(d)
                extra.append(d)
        try:
            from .pipeline import run
            from .plugins import get_plugin_host
        finally:
            for d in extra:  # site adds them itself, with their .pth files
                try:
                    sys.path.remove(d)
                except ValueError:
                    pass
    return run, get_plugin_host


def heal_site(sitedir: str) -> "Report | None":
    """Heal ``sitedir`` with the full pipeline and write its stamp.

    Our own processes heal one at a time (``flock`` on ``<site>/soabi_shim``,
    not waiting: when another holds it, it is healing, and None is returned).
    Plugins come only from distributions installed in ``sitedir``.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lock = _lock(sitedir)
        if lock is None:
            return None
        try:
            before = _dist_infos(sitedir)
            run, get_plugin_host = _import_pipeline()
            from .facts import gather_facts  # imported by the pipeline

            report: Report = run(  # type: ignore[operator]
                "heal",
                [sitedir],
                facts=gather_facts(sites=[sitedir]),
                host=get_plugin_host(sites=[sitedir]),  # type: ignore[operator]
            )
            write_stamp(sitedir, bool(report.problems), before)
            return report
        finally:
            os.close(lock)


def _lock(sitedir: str) -> "int | None":
    """``flock`` (exclusive, non-blocking) on ``<site>/soabi_shim``, made if
    missing (an editable install keeps its package elsewhere)."""
    import fcntl

    pkg = os.path.join(sitedir, PACKAGE_DIR)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(pkg, flags)
    except FileNotFoundError:
        if not _own_record(sitedir):
            return None
        try:
            os.mkdir(pkg, 0o755)
        except FileExistsError:
            pass
        fd = os.open(pkg, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _dist_infos(sitedir: str) -> "frozenset[tuple[str, int]]":
    """Every ``*.dist-info`` entry of ``sitedir`` with its inode: any install,
    uninstall or reinstall changes this."""
    with os.scandir(sitedir) as it:
        return frozenset((e.name, e.inode()) for e in it if e.name.endswith(".dist-info"))


def _own_record(sitedir: str) -> "str | None":
    """soabi-shim's RECORD in ``sitedir``: the one listing the ``.pth`` hook."""
    from .record import read_record

    for name in sorted(os.listdir(sitedir)):
        if name.startswith("soabi_shim-") and name.endswith(".dist-info"):
            record = os.path.join(sitedir, name, "RECORD")
            try:
                rows = read_record(record)
            except Exception:
                continue
            if any(row[0] == PTH_NAME for row in rows):
                return record
    return None


def write_stamp(sitedir: str, problems: bool, before: "frozenset[tuple[str, int]]") -> "str | None":
    """Write the stamp for the site directory as it is now; return its path.

    ``before`` is :func:`_dist_infos` from before the heal: when any
    distribution came or went since, no stamp is left (the next start heals
    again).  The stamp is an empty file created with ``O_CREAT | O_EXCL |
    O_NOFOLLOW`` (never through a planted symlink; no temporary file), listed
    in soabi-shim's RECORD first, then created; older stamps and their rows are
    removed.  Updating RECORD touches the site directory (its temporary file
    lives there), so the site directory's mtime is set back to the value the
    stamp's name carries.
    """
    from .record import append_rows, remove_rows

    record = _own_record(sitedir)
    if record is None:
        return None
    pkg = os.path.join(sitedir, PACKAGE_DIR)
    st = os.stat(sitedir)
    mtime = st.st_mtime_ns
    name = stamp_name(mtime, problems)
    path = os.path.join(pkg, name)
    old = [n for n in os.listdir(pkg) if is_stamp_name(n) and n != name]
    append_rows(record, [f"{PACKAGE_DIR}/{name}"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    created = False
    try:
        os.close(os.open(path, flags, 0o644))
        created = True
    except FileExistsError:
        pass  # a stamp (or something planted) already has the name: exists() is true either way
    except OSError:  # ENOSPC, EROFS...: no stamp, and no row for it
        remove_rows(record, [f"{PACKAGE_DIR}/{name}"])
        _set_mtime(sitedir, mtime)
        raise
    for n in old:
        try:
            os.unlink(os.path.join(pkg, n))  # a planted directory stays: unlink refuses it
        except OSError:
            pass
    if old:
        remove_rows(record, [f"{PACKAGE_DIR}/{n}" for n in old])
    _set_mtime(sitedir, mtime)
    if _dist_infos(sitedir) != before:
        # An installer ran meanwhile: its change may hide behind the mtime we set.
        if created:
            try:
                os.unlink(path)
            except OSError:
                pass
        return None
    return path


def _set_mtime(sitedir: str, mtime: int) -> None:
    st = os.stat(sitedir)
    if st.st_mtime_ns != mtime:
        os.utime(sitedir, ns=(st.st_atime_ns, mtime))


def stamp_state(sitedir: str) -> "str | None":
    """``"ok"``, ``"fallback"`` or None: the stamp that matches ``sitedir`` now."""
    mtime = os.stat(sitedir).st_mtime_ns
    pkg = os.path.join(sitedir, PACKAGE_DIR)
    if os.path.exists(os.path.join(pkg, STAMP_OK + str(mtime))):
        return "ok"
    if os.path.exists(os.path.join(pkg, STAMP_FALLBACK + str(mtime))):
        return "fallback"
    return None


# --- heal at an installer's exit ----------------------------------------------

#: Site directories to heal when this (installer) process exits.
EXIT_SITES: "list[tuple[str, frozenset[tuple[str, int]], frozenset[tuple[str, int]], Callable[[str], bool]]]" = []


def heal_at_exit(sitedir: str, may_heal: "Callable[[str], bool]") -> None:
    """Heal ``sitedir`` when this process (pip, ``python -m installer``) exits,
    if ``may_heal(sitedir)`` says so then (:func:`soabi_shim._start.may_heal`,
    passed in: this module sits below ``_start`` and never imports it)."""
    if any(entry[0] == sitedir for entry in EXIT_SITES):
        return
    if not EXIT_SITES:
        import atexit

        atexit.register(_exit_heal)
    EXIT_SITES.append((sitedir, _identity(sitedir), _dist_infos(sitedir), may_heal))


def _identity(sitedir: str) -> "frozenset[tuple[str, int]]":
    """soabi-shim's own files in ``sitedir`` (dist-info and hook, by inode):
    changed when the installer uninstalled or upgraded soabi-shim."""
    with os.scandir(sitedir) as it:
        return frozenset((e.name, e.inode()) for e in it if e.name.startswith("soabi_shim-") or e.name == PACKAGE_DIR)


def _exit_heal() -> None:
    """The exit handler: heal each registered site directory that changed
    (a distribution came or went in this process, or the stamp is stale).

    Silent: never prints, never raises, never changes the exit status.  A site
    whose soabi-shim was uninstalled or upgraded by this process is left to
    the next start (with whatever is installed then).
    """
    for sitedir, identity, dists, may_heal in EXIT_SITES:
        try:
            if _identity(sitedir) != identity:
                continue
            if _dist_infos(sitedir) == dists and stamp_state(sitedir) is not None:
                continue
            if may_heal(sitedir):
                heal_site(sitedir)
        except KeyboardInterrupt:
            raise
        except BaseException:
            pass
