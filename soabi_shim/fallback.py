"""The import fallback: a room of its own, imported only where it serves.

:func:`install` replaces the ``FileFinder`` path hook with one that also
accepts the libc-twin names of the interpreter's own extension suffixes
(``-linux-musl.so`` beside ``-linux-gnu.so``), so imports work where nothing
can be healed (a read-only site, a heal that left problems,
``SOABI_SHIM_FALLBACK_ONLY``).  A twin is loaded only after the ELF check
:func:`check`: a small header reader here accepts the ordinary case (a
shared object for this machine, word size and byte order, naming this
process's libc in ``DT_NEEDED``, no symbol versions: musl's own extensions)
with ``os.pread`` and ``int.from_bytes``;
anything else goes to the full reader and :func:`soabi_shim.elf.refusal`,
the rule ``heal`` uses, so the refusals are the same.

Imports: ``os``, ``sys`` and the leaf :mod:`soabi_shim._twins`; no
``struct``, no ``typing``.
"""

import os
import stat
import sys

from ._twins import twin_suffix_strings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Literal

    from .elf import ElfInfo

#: The fallback's path hook is installed in this process.
INSTALLED = False

_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_ET_DYN = 3
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_SYMTAB, _DT_STRSZ = 1, 5, 6, 10
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
_MAX_PHNUM = 256
_MAX_DYNAMIC = 4096 * 16
_MAX_STRTAB = 1 << 16
_MUSL, _GLIBC = "musl", "glibc"

#: (class, data, machine) of the interpreter's own ELF header, once read.
_SELF: "list[tuple[int, int, int] | None]" = []
_FULL: "dict[str, ElfInfo | None]" = {}


def libc() -> str:
    """This process's libc: glibc answers ``confstr(_CS_GNU_LIBPTHREAD_VERSION)``, musl does not."""
    return _GLIBC if sys.thread_info.version else _MUSL


def _self_header() -> "tuple[int, int, int] | None":
    if not _SELF:
        head = None
        try:
            fd = os.open(sys.executable, _OPEN)
            try:
                b = os.pread(fd, 20, 0)
            finally:
                os.close(fd)
            if len(b) == 20 and b[:4] == b"\x7fELF" and b[4] in (1, 2) and b[5] in (1, 2):
                head = (b[4], b[5], int.from_bytes(b[18:20], "little" if b[5] == 1 else "big"))
        except OSError:
            pass
        _SELF.append(head)
    return _SELF[0]


def _quick(fd: int) -> bool:  # noqa: C901 - the fallback's ELF header parser, one straight read
    """True when the full check would surely accept the file open at ``fd``;
    False means "ask the full reader" (which accepts or says why not)."""
    me = _self_header()
    size = os.fstat(fd).st_size
    h = os.pread(fd, 64, 0)
    if me is None or len(h) < 64 or h[:4] != b"\x7fELF" or (h[4], h[5]) != me[:2]:
        return False
    order: Literal["little", "big"] = "little" if h[5] == 1 else "big"

    def u(b: bytes, at: int, n: int) -> int:
        return int.from_bytes(b[at : at + n], order)

    if u(h, 16, 2) != _ET_DYN or u(h, 18, 2) != me[2]:
        return False
    w = 8 if h[4] == 2 else 4  # word size
    phoff = u(h, 32, 8) if w == 8 else u(h, 28, 4)
    phentsize, phnum = (u(h, 54, 2), u(h, 56, 2)) if w == 8 else (u(h, 42, 2), u(h, 44, 2))
    if phentsize != (56 if w == 8 else 32) or not 0 < phnum <= _MAX_PHNUM or phoff + phnum * phentsize > size:
        return False
    table = os.pread(fd, phnum * phentsize, phoff)
    loads = []
    dynamic = None
    for at in range(0, len(table), phentsize):
        p_type = u(table, at, 4)
        if w == 8:
            offset, vaddr, filesz = u(table, at + 8, 8), u(table, at + 16, 8), u(table, at + 32, 8)
        else:
            offset, vaddr, filesz = u(table, at + 4, 4), u(table, at + 8, 4), u(table, at + 16, 4)
        if p_type == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == _PT_DYNAMIC:
            if dynamic is not None:
                return False
            dynamic = (offset, filesz)
        elif p_type == _PT_INTERP:
            return False
    if not loads or dynamic is None or not 0 < dynamic[1] <= _MAX_DYNAMIC or dynamic[0] + dynamic[1] > size:
        return False
    data = os.pread(fd, dynamic[1], dynamic[0])
    tags: dict[int, int] = {}
    needed = []
    for at in range(0, len(data) - 2 * w + 1, 2 * w):
        tag, val = u(data, at, w), u(data, at + w, w)
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            needed.append(val)
        else:
            tags[tag] = val
    else:
        return False  # no DT_NULL
    strtab, strsz = tags.get(_DT_STRTAB), tags.get(_DT_STRSZ)
    if strtab is None or strsz is None or _DT_SYMTAB not in tags or not needed or strsz > _MAX_STRTAB:
        return False
    if _DT_VERNEED in tags or _DT_VERNEEDNUM in tags:
        return False  # symbol versions (glibc's, libgcc's): the full reader checks the chain
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab < vaddr + filesz:
            start = offset + strtab - vaddr
            break
    else:
        return False
    if start + strsz > size:
        return False
    strings = os.pread(fd, strsz, start)
    mine = libc()
    for at in needed:
        end = strings.find(b"\0", at)
        if at >= len(strings) or end < 0:
            return False
        name = strings[at:end]
        if name.startswith(b"libc.musl-") or name == b"libc.so":
            return mine == _MUSL
        if name == b"libc.so.6" or name.startswith(b"ld-linux"):
            return mine == _GLIBC
    return False  # names no libc: the full reader looks at the version needs


def check(path: str) -> "str | None":
    """None if ``path`` may be loaded by this interpreter, else the reason
    (the rule ``heal`` applies: :func:`soabi_shim.elf.refusal`)."""
    try:
        fd = os.open(path, _OPEN)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "cannot read: not a regular file"
        if _quick(fd):
            return None
    except (OSError, ValueError, IndexError):
        pass
    finally:
        os.close(fd)
    return _full(path)


def _full(path: str) -> "str | None":
    from .elf import read_elf, refusal
    from .errors import ElfError

    try:
        if "self" not in _FULL:
            try:
                _FULL["self"] = read_elf(os.path.realpath(sys.executable))
            except ElfError:
                _FULL["self"] = None
        return refusal(read_elf(path), _FULL["self"], libc())
    except ElfError as exc:
        return str(exc)


def install() -> bool:
    """Replace the ``FileFinder`` path hook with one that also accepts twins.

    Idempotent; False where there is nothing to add (no suffix with a libc
    part) or no ``FileFinder`` hook to replace.
    """
    global INSTALLED
    if INSTALLED:
        return True
    import _imp

    bootstrap = sys.modules.get("_frozen_importlib_external")
    if bootstrap is None:  # pragma: no cover - every CPython 3.9+ has it
        return False
    native = _imp.extension_suffixes()
    twins: list[str] = []
    for suffix in native:
        for twin in twin_suffix_strings(suffix):
            if twin not in native and twin not in twins:
                twins.append(twin)
    if not twins:
        return False
    base = bootstrap.ExtensionFileLoader
    packages = ["__init__" + s for s in twins]

    class TwinExtensionLoader(base):  # type: ignore[misc, valid-type]
        """Loads an extension named for the other libc, after the ELF check."""

        def create_module(self, spec: "ModuleSpec") -> "ModuleType":
            reason = check(self.path)
            if reason is not None:
                raise ImportError(f"soabi-shim refused {self.path}: {reason}", name=spec.name, path=self.path)
            module: ModuleType = super().create_module(spec)
            return module

        def is_package(self, fullname: str) -> bool:
            return os.path.basename(self.path) in packages

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
    twin_loaders = [(suffix, TwinExtensionLoader) for suffix in twins]
    for key, finder in list(sys.path_importer_cache.items()):
        if type(finder) is not bootstrap.FileFinder:
            continue
        # Teach the finders already made the twin names, keeping the directory
        # listings they cached (re-listing every directory on sys.path costs
        # more than all the rest); where the internals differ, evict them.
        loaders = getattr(finder, "_loaders", None)
        if isinstance(loaders, list) and all(isinstance(e, tuple) and len(e) == 2 for e in loaders):
            last = max((i for i, (_, cls) in enumerate(loaders) if cls is base), default=-1)
            loaders[last + 1 : last + 1] = twin_loaders
        else:
            del sys.path_importer_cache[key]
    INSTALLED = True
    return True
