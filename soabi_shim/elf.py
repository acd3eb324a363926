"""A small, defensive ELF reader: class, byte order, machine, type,
``PT_INTERP``, ``DT_NEEDED`` and the version needs (``GLIBC_2.*``).

It reads at most the headers and the dynamic string table, never maps or
executes anything, and raises :class:`~soabi_shim.errors.ElfError` for
anything malformed or truncated.
"""

from __future__ import annotations

import struct

from .errors import ElfError

# No typing import at run time: the import fallback loads this module in the
# middle of a user's import.  Annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Optional

__all__ = ["ElfInfo", "MACHINES", "libc_of", "read_elf", "refusal"]

_MAGIC = b"\x7fELF"
ET_DYN = 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
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

_MAX_HEADERS = 4096  # program headers; real files have a dozen
_MAX_DYNAMIC = 1 << 20  # bytes of dynamic section / string table we read


class ElfInfo:
    """What soabi-shim needs to know about one ELF file.

    A plain class, not a dataclass: the import fallback loads this module
    while an import is in progress, so it must import nothing heavy.
    """

    __slots__ = ("bits", "elf_type", "interpreter", "little_endian", "machine", "needed", "version_needs")

    def __init__(
        self,
        bits: int,
        little_endian: bool,
        machine: int,
        elf_type: int,
        interpreter: Optional[str],
        needed: tuple[str, ...],
        version_needs: tuple[tuple[str, str], ...],
    ) -> None:
        self.bits = bits  # 32 or 64
        self.little_endian = little_endian
        self.machine = machine
        self.elf_type = elf_type
        self.interpreter = interpreter  # PT_INTERP, e.g. /lib/ld-musl-x86_64.so.1
        self.needed = needed  # DT_NEEDED
        self.version_needs = version_needs  # (file, version), e.g. ("libc.so.6", "GLIBC_2.14")

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
    return None


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError("truncated ELF file")
        self.f.seek(offset)
        data = self.f.read(length)
        if len(data) != length:
            raise ElfError("truncated ELF file")
        return data


def read_elf(path: str) -> ElfInfo:
    """Read the ELF facts of ``path``; :class:`ElfError` if it is not ELF."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            return _parse(_Reader(f, size))
    except OSError as exc:
        raise ElfError(f"cannot read: {exc.strerror or exc}") from None
    except struct.error:
        raise ElfError("malformed ELF file") from None


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
    if e_phnum > _MAX_HEADERS or (e_phnum and e_phentsize < ph_size):
        raise ElfError("malformed ELF program headers")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: Optional[tuple[int, int]] = None
    interp: Optional[str] = None
    for i in range(e_phnum):
        raw = r.read(e_phoff + i * e_phentsize, ph_size)
        if bits == 64:
            p_type, _flags, p_offset, p_vaddr, _pa, p_filesz, _memsz, _al = struct.unpack(ph_fmt, raw)
        else:
            p_type, p_offset, p_vaddr, _pa, p_filesz, _memsz, _flags, _al = struct.unpack(ph_fmt, raw)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == PT_INTERP:
            interp = r.read(p_offset, min(p_filesz, 4096)).split(b"\0", 1)[0].decode("utf-8", "replace")
    needed: list[str] = []
    version_needs: list[tuple[str, str]] = []
    if dynamic is not None:
        needed, version_needs = _read_dynamic(r, bits, e, dynamic, loads)
    return ElfInfo(bits, e == "<", e_machine, e_type, interp, tuple(needed), tuple(version_needs))


def _to_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for start, offset, filesz in loads:
        if start <= vaddr < start + filesz:
            return offset + (vaddr - start)
    raise ElfError("malformed ELF dynamic section")


def _read_dynamic(
    r: _Reader, bits: int, e: str, dynamic: tuple[int, int], loads: list[tuple[int, int, int]]
) -> tuple[list[str], list[tuple[str, str]]]:
    d_offset, d_size = dynamic
    entry_fmt = e + ("qQ" if bits == 64 else "iI")
    entry_size = 16 if bits == 64 else 8
    data = r.read(d_offset, min(d_size, _MAX_DYNAMIC))
    needed_offsets: list[int] = []
    strtab = strsz = verneed = verneednum = None
    for pos in range(0, len(data) - entry_size + 1, entry_size):
        tag, val = struct.unpack_from(entry_fmt, data, pos)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offsets.append(val)
        elif tag == DT_STRTAB:
            strtab = val
        elif tag == DT_STRSZ:
            strsz = val
        elif tag == DT_VERNEED:
            verneed = val
        elif tag == DT_VERNEEDNUM:
            verneednum = val
    if strtab is None or strsz is None:
        if needed_offsets:
            raise ElfError("malformed ELF dynamic section")
        return [], []
    table = r.read(_to_offset(loads, strtab), min(strsz, _MAX_DYNAMIC))

    def string(offset: int) -> str:
        if offset >= len(table):
            raise ElfError("malformed ELF string table")
        return table[offset : table.index(b"\0", offset) if b"\0" in table[offset:] else len(table)].decode(
            "utf-8", "replace"
        )

    needed = [string(o) for o in needed_offsets]
    needs: list[tuple[str, str]] = []
    if verneed is not None and verneednum:
        pos = _to_offset(loads, verneed)
        for _ in range(min(verneednum, 256)):
            _ver, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack(e + "HHIII", r.read(pos, 16))
            lib = string(vn_file)
            apos = pos + vn_aux
            for _ in range(min(vn_cnt, 1024)):
                _hash, _flags, _other, vna_name, vna_next = struct.unpack(e + "IHHII", r.read(apos, 16))
                needs.append((lib, string(vna_name)))
                if not vna_next:
                    break
                apos += vna_next
            if not vn_next:
                break
            pos += vn_next
    return needed, needs
