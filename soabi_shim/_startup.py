"""The start-up hook.  Imported only when there is work; keep it tiny.

The fast path lives in the ``.pth`` line itself (:data:`PTH_LINE`): on
glibc, when disabled, or when the site directory's mtime matches the stamp
written by the last heal, it does a ``stat``, an ``open`` and nothing else,
and this module is never imported.  Otherwise :func:`start` runs:

1. install the import fallback (a replacement ``FileFinder`` path hook that
   also accepts the libc-twin names of the interpreter's own suffixes, ELF
   checked at load time), so imports work even where nothing can be healed;
2. unless ``SOABI_SHIM_FALLBACK_ONLY`` is set, heal the site directory
   holding the hook with the same pipeline as ``soabi-shim heal``, if this
   process may write there, and write the stamp.

Nothing here prints or lets an exception escape into the interpreter.
"""

import os
import sys

from ._names import DISABLE_ENV, FALLBACK_ONLY_ENV, PTH_SEEN_MARK

# No typing import at run time: annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from .elf import ElfInfo
    from .report import Report


STAMP_NAME = "_stamp"

#: The single ``import`` line of ``soabi_shim-startup.pth`` is generated from
#: this (a test keeps the shipped file equal).  Every start pays for compiling
#: the line, so on glibc it is one short expression: ``sys.thread_info.version``
#: is glibc's ``NPTL 2.x`` (read from confstr at start-up; None on musl), and
#: nothing else runs.  Elsewhere :data:`_STAGE2` compares the stamp with the
#: site dir's mtime and imports this module only when they differ.
#: ``sitedir`` is the local variable of ``site.addpackage`` naming the
#: ``.pth`` file's directory.  No ``with``/``open``: an unclosed file object
#: would warn under ``-X dev``.
_STAGE2 = (
    "try:\n"
    " if not os.environ.get('SOABI_SHIM_DISABLE'):\n"
    "  try:\n"
    "   f = os.open(os.path.join(sitedir, 'soabi_shim', '_stamp'), os.O_RDONLY); s = os.read(f, 64); os.close(f)\n"
    "  except OSError: s = b''\n"
    "  if s != b'%d 0' % os.stat(sitedir).st_mtime_ns:\n"
    "   __import__('soabi_shim._startup')._startup.start(sitedir, s.decode('ascii', 'replace'))\n"
    "except Exception: pass\n"
)
#: In a venv ``site`` reads site-packages' ``.pth`` files twice (CPython
#: issue #75723); the ``sys.modules`` marker (a name nothing imports) makes
#: the second pass stop before compiling anything.
_MARK = PTH_SEEN_MARK
PTH_LINE = (
    "import os, sys; sys.thread_info.version or sys.platform != 'linux'"
    f" or {_MARK!r} in sys.modules or sys.modules.setdefault({_MARK!r}, None) or exec({_STAGE2!r})\n"
)
START_LINE = "soabi_shim._startup:start\n"

FALLBACK_INSTALLED = False


def _on_musl() -> bool:
    """The running libc is not glibc: the test the ``.pth`` line makes.

    ``sys.thread_info.version`` is glibc's ``confstr(_CS_GNU_LIBPTHREAD_VERSION)``
    (``"NPTL 2.36"``), read at start-up; musl has no answer (None).
    """
    return not sys.thread_info.version


def start(sitedir: "str | None" = None, stamp: "str | None" = None) -> None:
    """Entry point of the ``.pth`` line and of the PEP 829 ``.start`` file."""
    try:
        _start(sitedir, stamp)
    except Exception:  # never raise into the user's interpreter
        pass


def _read_stamp(sitedir: str) -> str:
    try:
        with open(os.path.join(sitedir, "soabi_shim", STAMP_NAME)) as f:
            return f.read(64)
    except OSError:
        return ""


def _start(sitedir: "str | None", stamp: "str | None") -> None:
    if sitedir is None:  # called from a .start file: no fast path ran
        if not sys.platform.startswith("linux") or os.environ.get(DISABLE_ENV) or not _on_musl():
            return
        sitedir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        stamp = _read_stamp(sitedir)
    stamp = stamp or ""
    mtime = f"{os.stat(sitedir).st_mtime_ns} "
    if stamp == mtime + "0":
        return
    install_fallback()
    if stamp.startswith(mtime) or os.environ.get(FALLBACK_ONLY_ENV):
        return  # nothing changed since the last heal (which left problems)
    if not (os.access(sitedir, os.W_OK) and os.access(os.path.join(sitedir, "soabi_shim"), os.W_OK)):
        return  # a non-root user in a root-built image: the fallback serves
    heal_site(sitedir)


def _dist_infos(sitedir: str) -> "list[str]":
    return sorted(n for n in os.listdir(sitedir) if n.endswith(".dist-info"))


def heal_site(sitedir: str) -> "Report":
    """Heal ``sitedir`` with the full pipeline and write the stamp."""
    import warnings

    before = os.stat(sitedir).st_mtime_ns
    names = _dist_infos(sitedir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from .pipeline import run

        report = run("heal", [sitedir])
        record_stamp(sitedir)
    # Our own aliases and RECORD updates may have changed the mtime; anything
    # installed meanwhile must be seen next time, so keep the old one then.
    after = os.stat(sitedir).st_mtime_ns
    mtime = after if _dist_infos(sitedir) == names else before
    write_stamp(sitedir, f"{mtime} {1 if report.problems else 0}")
    return report


def record_stamp(sitedir: str) -> None:
    """List the stamp in soabi-shim's own RECORD, so uninstall removes it."""
    from .record import append_rows

    for name in os.listdir(sitedir):
        if name.startswith("soabi_shim-") and name.endswith(".dist-info"):
            record = os.path.join(sitedir, name, "RECORD")
            if os.path.isfile(record):
                append_rows(record, ["soabi_shim/" + STAMP_NAME])


def write_stamp(sitedir: str, text: str) -> None:
    """Atomically write the stamp (inside ``soabi_shim/``: no site mtime change)."""
    from .record import clean_stale_temps

    pkg = os.path.join(sitedir, "soabi_shim")
    clean_stale_temps(pkg)  # stamps left by killed processes use the same naming
    tmp = os.path.join(pkg, f".RECORD.soabi-shim.{os.getpid()}.stamp.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(pkg, STAMP_NAME))


# --- the import fallback ---------------------------------------------------

_ELF_CACHE: "dict[str, ElfInfo]" = {}


def _check(path: str) -> "str | None":
    """None if ``path`` may be loaded, else the reason (the rule heal uses)."""
    from .elf import read_elf, refusal
    from .errors import ElfError

    try:
        me = _ELF_CACHE.get("self")
        if me is None:
            me = _ELF_CACHE["self"] = read_elf(os.path.realpath(sys.executable))
        return refusal(read_elf(path), me, "musl" if _on_musl() else "glibc")
    except ElfError as exc:
        return str(exc)


def install_fallback() -> bool:
    """Replace the FileFinder path hook with one that also accepts twins."""
    global FALLBACK_INSTALLED
    if FALLBACK_INSTALLED:
        return True
    import _imp

    from ._twins import suffix_twins

    bootstrap = sys.modules.get("_frozen_importlib_external")
    if bootstrap is None:  # pragma: no cover - every CPython 3.9+ has it
        return False
    native = _imp.extension_suffixes()
    twins = []
    for suffix in native:
        for twin in suffix_twins(suffix):
            if twin not in native and twin not in twins:
                twins.append(twin)
    if not twins:
        return False
    base = bootstrap.ExtensionFileLoader

    class TwinExtensionLoader(base):  # type: ignore[misc, valid-type]
        """Loads an extension named for the other libc, after the ELF checks."""

        def create_module(self, spec: "ModuleSpec") -> "ModuleType":
            reason = _check(self.path)
            if reason is not None:
                raise ImportError(f"soabi-shim refused {self.path}: {reason}", name=spec.name, path=self.path)
            module: ModuleType = super().create_module(spec)
            return module

        def is_package(self, fullname: str) -> bool:
            return os.path.basename(self.path) in ["__init__" + s for s in twins]

    hook = bootstrap.FileFinder.path_hook(
        (base, native),
        (TwinExtensionLoader, twins),
        (bootstrap.SourceFileLoader, bootstrap.SOURCE_SUFFIXES),
        (bootstrap.SourcelessFileLoader, bootstrap.BYTECODE_SUFFIXES),
    )
    for i, old in enumerate(sys.path_hooks):
        if getattr(old, "__qualname__", "").startswith("FileFinder.path_hook"):
            sys.path_hooks[i] = hook
            break
    else:
        return False
    for key, finder in list(sys.path_importer_cache.items()):
        if type(finder) is bootstrap.FileFinder:
            del sys.path_importer_cache[key]
    FALLBACK_INSTALLED = True
    return True
