"""A small, defensive ELF reader: class, byte order, machine, type,
``PT_INTERP``, ``DT_NEEDED`` and the version needs (``GLIBC_2.*``).

It never maps or executes anything, opens only regular files (a FIFO or a
device is refused without reading), and raises
:class:`~soabi_shim.errors.ElfError` for anything malformed, truncated or
breaking one of the bounds below.  Every read is bounded: the number of
program headers, the size of the dynamic section, the number of
``DT_NEEDED`` and version-need entries, the length of each string (read
from a small window, never the whole table) and the total string data
kept.  Work and memory per file are bounded by constants and by the file's
size, so a hostile file (say 65,000 ``DT_NEEDED`` entries) is refused
quickly instead of exhausting memory.
"""

from __future__ import annotations

import os
import stat
import struct

from .errors import ElfError

# No typing import at run time: the import fallback loads this module in the
# middle of a user's import.  Annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["ElfInfo", "MACHINES", "libc_of", "read_elf", "read_elf_fd", "refusal"]

_MAGIC = b"\x7fELF"
ET_DYN = 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 1, 5, 6, 10
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF

#: e_machine values of the architectures CPython runs on.
MACHINES: dict[int, str] = {
    2: "sparc",
    3: "i386",
    4: "m68k",
    8: "mips",
    15: "hppa",
    18: "sparc32plus",
    20: "powerpc",
    21: "powerpc64",
    22: "s390",
    40: "arm",
    42: "sh",
    43: "sparcv9",
    50: "ia64",
    62: "x86_64",
    92: "or1k",
    183: "aarch64",
    243: "riscv",
    252: "csky",
    258: "loongarch",
    0x9026: "alpha",
}

# Bounds.  Real extension modules stay far below each of them (a dozen
# program headers, a few dozen dynamic entries, a handful of DT_NEEDED and
# version needs, names of a few dozen bytes); a file beyond one is refused.
MAX_FILE_SIZE = 1 << 32  # 4 GiB: larger files are not extension modules
MAX_PROGRAM_HEADERS = 256
MAX_DYNAMIC_ENTRIES = 4096  # read as one buffer: 64 KiB at most
MAX_NEEDED = 512  # DT_NEEDED entries
MAX_VERSION_NEEDS = 1024  # Vernaux entries over all Verneed entries
MAX_VERNEED_FILES = 256  # Verneed entries
MAX_STRING = 4096  # bytes of one name (PT_INTERP, DT_NEEDED, version)
MAX_STRING_DATA = 1 << 16  # bytes of all distinct names kept per file


class ElfInfo:
    """What soabi-shim needs to know about one ELF file.

    A plain class, not a dataclass: the import fallback loads this module
    while an import is in progress, so it must import nothing heavy.
    """

    __slots__ = (
        "bits",
        "dynamic",
        "elf_type",
        "interpreter",
        "little_endian",
        "loads",
        "machine",
        "needed",
        "version_needs",
    )

    def __init__(
        self,
        bits: int,
        little_endian: bool,
        machine: int,
        elf_type: int,
        interpreter: Optional[str],
        needed: tuple[str, ...],
        version_needs: tuple[tuple[str, str], ...],
        dynamic: bool = True,
        loads: int = 1,
    ) -> None:
        self.bits = bits  # 32 or 64
        self.little_endian = little_endian
        self.machine = machine
        self.elf_type = elf_type
        self.interpreter = interpreter  # PT_INTERP, e.g. /lib/ld-musl-x86_64.so.1
        self.needed = needed  # DT_NEEDED
        self.version_needs = version_needs  # (file, version), e.g. ("libc.so.6", "GLIBC_2.14")
        # PT_DYNAMIC with a symbol and a string table: what dlopen() needs to
        # find PyInit_<name>.  False for a header followed by zeros.
        self.dynamic = dynamic
        self.loads = loads  # number of PT_LOAD segments

    def __repr__(self) -> str:
        return f"<ElfInfo {self.describe()} type={self.elf_type} interp={self.interpreter!r} needed={self.needed!r}>"

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"machine {self.machine}")

    def describe(self) -> str:
        """E.g. ``x86_64 64-bit little-endian``."""
        order = "little-endian" if self.little_endian else "big-endian"
        return f"{self.machine_name} {self.bits}-bit {order}"

    def same_platform(self, other: ElfInfo) -> bool:
        """Same architecture, word size and byte order."""
        return (self.machine, self.bits, self.little_endian) == (
            other.machine,
            other.bits,
            other.little_endian,
        )


def libc_of(info: ElfInfo) -> tuple[Optional[str], str]:
    """The libc family a file is linked against and the evidence.

    Returns ``("glibc", why)``, ``("musl", why)`` or ``(None, why)`` when the
    file names no libc at all (an extension calling only the C API).
    """
    if info.interpreter:
        if "ld-musl" in info.interpreter:
            return "musl", f"PT_INTERP {info.interpreter}"
        if "ld-linux" in info.interpreter or info.interpreter.endswith("ld.so.1"):
            return "glibc", f"PT_INTERP {info.interpreter}"
    for name in info.needed:
        if name.startswith("libc.musl-") or name == "libc.so":
            return "musl", f"needs {name}"
        if name == "libc.so.6" or name.startswith("ld-linux"):
            return "glibc", f"needs {name}"
    for lib, version in info.version_needs:
        if version.startswith("GLIBC_"):
            return "glibc", f"needs {version} from {lib}"
    for name in info.needed:
        if name in ("libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"):
            return "glibc", f"needs {name}"
    return None, "needs no libc"


def refusal(info: ElfInfo, interpreter: Optional[ElfInfo], libc: Optional[str]) -> Optional[str]:
    """Why ``info`` must not be loaded by an interpreter whose own ELF file is
    ``interpreter`` and which runs on ``libc``; None if it may.

    The one rule for ``heal`` (:mod:`soabi_shim.builtin`) and the import
    fallback (:mod:`soabi_shim._startup`): a shared object, for the same
    machine, word size and byte order, linked to the same libc or to none.
    """
    if info.elf_type != ET_DYN:
        return f"not an ELF shared object (e_type {info.elf_type})"
    if interpreter is not None and not info.same_platform(interpreter):
        return f"ELF for {info.describe()}, interpreter is {interpreter.describe()}"
    family, evidence = libc_of(info)
    if family is not None and libc is not None and family != libc:
        return f"linked against {family} ({evidence}), interpreter runs on {libc}"
    if not info.loads:
        return "not an ELF shared object (no loadable segment)"
    if not info.dynamic:
        return "not an ELF shared object (no dynamic section with a symbol table)"
    return None


#: String tables up to this size are read once; larger ones (big C++
#: extensions) are read one bounded window per name.
_WHOLE_TABLE = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


#: The first bytes of a file are read once, by the first read that falls
#: inside them, and later reads inside them are served from memory: the ELF
#: header, the program headers and (in all but large extensions) the
#: string table and version needs, so a small extension costs one ``pread``
#: instead of seven.
HEAD = 1 << 14


class _Reader:
    """Bounded positional reads from one open file.

    ``reads`` and ``bytes_read`` count what the parser asked for, however
    many system calls served it (``preads`` counts those).
    """

    __slots__ = ("bytes_read", "fd", "head", "preads", "reads", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.reads = 0
        self.bytes_read = 0
        self.preads = 0
        self.head: Optional[bytes] = None

    def read(self, offset: int, length: int) -> bytes:
        end = offset + length
        if offset < 0 or length < 0 or end > self.size:
            raise ElfError("truncated ELF file")
        self.reads += 1
        self.bytes_read += length
        if end <= HEAD:
            if self.head is None:
                self.preads += 1
                self.head = os.pread(self.fd, min(self.size, HEAD), 0)
            data = self.head[offset:end]
        elif length:
            self.preads += 1
            data = os.pread(self.fd, length, offset)
        else:
            data = b""
        if len(data) != length:  # the file shrank under us
            raise ElfError("truncated ELF file")
        return data


class _Strings:
    """Names from a dynamic string table, each bounded to MAX_STRING bytes."""

    __slots__ = ("cache", "kept", "offset", "reader", "size", "table")

    def __init__(self, reader: _Reader, offset: int, size: int) -> None:
        self.reader = reader
        self.offset = offset
        self.size = size
        if offset + size > reader.size:  # the loader maps the whole table
            raise ElfError("truncated ELF file")
        self.table = reader.read(offset, size) if size <= _WHOLE_TABLE else None
        self.cache: dict[int, str] = {}
        self.kept = 0

    def get(self, index: int) -> str:
        found = self.cache.get(index)
        if found is not None:
            return found
        if index >= self.size:
            raise ElfError("malformed ELF string table")
        window = min(self.size - index, MAX_STRING + 1)
        if self.table is not None:
            buf, start = self.table, index
        else:
            buf, start = self.reader.read(self.offset + index, window), 0
        nul = buf.find(b"\0", start, start + window)
        if nul < 0:
            if window > MAX_STRING:
                raise ElfError(f"ELF name longer than {MAX_STRING} bytes")
            raise ElfError("malformed ELF string table (a name is not terminated)")
        self.kept += nul - start
        if self.kept > MAX_STRING_DATA:
            raise ElfError(f"more than {MAX_STRING_DATA} bytes of ELF names")
        text = buf[start:nul].decode("utf-8", "replace")
        self.cache[index] = text
        return text


def read_elf(path: str, *, dir_fd: Optional[int] = None, follow_symlinks: bool = True) -> ElfInfo:
    """Read the ELF facts of ``path``; :class:`ElfError` if it is not ELF.

    ``path`` is opened without blocking (a FIFO never hangs) and must be a
    regular file.  ``dir_fd`` resolves a relative ``path`` against an open
    directory; ``follow_symlinks=False`` refuses a symlink as the last
    component (``O_NOFOLLOW``).
    """
    flags = _OPEN_FLAGS | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise ElfError(f"cannot read: {exc.strerror or exc}") from None
    try:
        return read_elf_fd(fd)
    finally:
        os.close(fd)


def read_elf_fd(fd: int) -> ElfInfo:
    """Read the ELF facts of an open file (the caller keeps and closes ``fd``)."""
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise ElfError(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ElfError("cannot read: not a regular file")
    if st.st_size > MAX_FILE_SIZE:
        raise ElfError(f"file too large for an extension module ({st.st_size} bytes)")
    try:
        return _parse(_Reader(fd, st.st_size))
    except OSError as exc:
        raise ElfError(f"cannot read: {exc.strerror or exc}") from None
    except struct.error:
        raise ElfError("malformed ELF file") from None


def _cstring(data: bytes) -> str:
    nul = data.find(b"\0", 0, MAX_STRING + 1)
    if nul < 0:
        if len(data) > MAX_STRING:
            raise ElfError(f"ELF name longer than {MAX_STRING} bytes")
        nul = len(data)
    return data[:nul].decode("utf-8", "replace")


def _parse(r: _Reader) -> ElfInfo:
    if r.size < 16:
        raise ElfError("not an ELF file" if r.size < 4 or r.read(0, 4) != _MAGIC else "truncated ELF file")
    ident = r.read(0, 16)
    if ident[:4] != _MAGIC:
        raise ElfError("not an ELF file")
    if ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise ElfError("malformed ELF header")
    bits = 64 if ident[4] == 2 else 32
    e = "<" if ident[5] == 1 else ">"
    if bits == 64:
        hdr = r.read(16, 48)
        e_type, e_machine, _v, _entry, e_phoff, _sh, _fl, _eh, e_phentsize, e_phnum = struct.unpack(
            e + "HHIQQQIHHH", hdr[:42]
        )
        ph_fmt, ph_size = e + "IIQQQQQQ", 56
    else:
        hdr = r.read(16, 36)
        e_type, e_machine, _v, _entry, e_phoff, _sh, _fl, _eh, e_phentsize, e_phnum = struct.unpack(
            e + "HHIIIIIHHH", hdr[:30]
        )
        ph_fmt, ph_size = e + "IIIIIIII", 32
    if e_phnum > MAX_PROGRAM_HEADERS:
        raise ElfError(f"too many ELF program headers ({e_phnum} > {MAX_PROGRAM_HEADERS})")
    if e_phnum and e_phentsize != ph_size:
        raise ElfError("malformed ELF program headers")
    table = r.read(e_phoff, e_phnum * ph_size) if e_phnum else b""
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: Optional[tuple[int, int]] = None
    interp: Optional[str] = None
    for fields in struct.iter_unpack(ph_fmt, table):
        if bits == 64:
            p_type, _flags, p_offset, p_vaddr, _pa, p_filesz, _memsz, _al = fields
        else:
            p_type, p_offset, p_vaddr, _pa, p_filesz, _memsz, _flags, _al = fields
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            if dynamic is not None:
                raise ElfError("malformed ELF program headers (two PT_DYNAMIC)")
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            if interp is not None:
                raise ElfError("malformed ELF program headers (two PT_INTERP)")
            interp = _cstring(r.read(p_offset, min(p_filesz, MAX_STRING + 1)))
    needed: tuple[str, ...] = ()
    version_needs: tuple[tuple[str, str], ...] = ()
    has_symbols = False
    if dynamic is not None:
        needed, version_needs, has_symbols = _read_dynamic(r, bits, e, dynamic, loads)
    return ElfInfo(bits, e == "<", e_machine, e_type, interp, needed, version_needs, has_symbols, len(loads))


def _to_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for start, offset, filesz in loads:
        if start <= vaddr < start + filesz:
            return offset + (vaddr - start)
    raise ElfError("malformed ELF dynamic section")


def _read_dynamic(
    r: _Reader, bits: int, e: str, dynamic: tuple[int, int], loads: list[tuple[int, int, int]]
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], bool]:
    d_offset, d_size = dynamic
    entry_size = 16 if bits == 64 else 8
    limit = MAX_DYNAMIC_ENTRIES * entry_size
    data = r.read(d_offset, min(d_size, limit) // entry_size * entry_size)
    needed_offsets: list[int] = []
    strtab = strsz = symtab = verneed = verneednum = None
    terminated = False
    for tag, val in struct.iter_unpack(e + ("qQ" if bits == 64 else "iI"), data):
        if tag == DT_NULL:
            terminated = True
            break
        if tag == DT_NEEDED:
            if len(needed_offsets) >= MAX_NEEDED:
                raise ElfError(f"too many DT_NEEDED entries (more than {MAX_NEEDED})")
            needed_offsets.append(val)
        elif tag == DT_STRTAB:
            strtab = val
        elif tag == DT_STRSZ:
            strsz = val
        elif tag == DT_SYMTAB:
            symtab = val
        elif tag == DT_VERNEED:
            verneed = val
        elif tag == DT_VERNEEDNUM:
            verneednum = val
    if not terminated and d_size > limit:
        raise ElfError(f"too many ELF dynamic entries (more than {MAX_DYNAMIC_ENTRIES})")
    if strtab is None or strsz is None:
        if needed_offsets or verneednum:
            raise ElfError("malformed ELF dynamic section")
        return (), (), False
    strings = _Strings(r, _to_offset(loads, strtab), strsz)
    needed = tuple(strings.get(o) for o in needed_offsets)
    needs: list[tuple[str, str]] = []
    if verneed is not None and verneednum:
        if verneednum > MAX_VERNEED_FILES:
            raise ElfError(f"too many ELF version-need entries ({verneednum} > {MAX_VERNEED_FILES})")
        _read_verneed(r, e, _to_offset(loads, verneed), verneednum, strings, needs)
    return needed, tuple(needs), symtab is not None


def _read_verneed(r: _Reader, e: str, pos: int, count: int, strings: _Strings, needs: list[tuple[str, str]]) -> None:
    """Follow the Verneed chain; every entry is read at most once (no loops)."""
    seen: set[int] = set()
    for _ in range(count):
        if pos in seen:
            raise ElfError("malformed ELF version needs (the chain loops)")
        seen.add(pos)
        _ver, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack(e + "HHIII", r.read(pos, 16))
        lib = strings.get(vn_file)
        apos = pos + vn_aux
        for _ in range(vn_cnt):
            if apos in seen:
                raise ElfError("malformed ELF version needs (the chain loops)")
            seen.add(apos)
            if len(needs) >= MAX_VERSION_NEEDS:
                raise ElfError(f"too many ELF version needs (more than {MAX_VERSION_NEEDS})")
            _hash, _flags, _other, vna_name, vna_next = struct.unpack(e + "IHHII", r.read(apos, 16))
            needs.append((lib, strings.get(vna_name)))
            if not vna_next:
                break
            apos += vna_next
        if not vn_next:
            break
        pos += vn_next
