"""The ELF reader (``soabi_shim.elf``): real objects built with gcc and
musl-gcc, hand-made headers for foreign platforms, and malformed input."""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from soabi_shim.elf import MACHINES, ElfInfo, libc_of, read_elf
from soabi_shim.errors import ElfError, SoabiShimError

ET_EXEC, ET_DYN = 2, 3
EM_386, EM_MIPS, EM_PPC64, EM_X86_64, EM_AARCH64 = 3, 8, 21, 62, 183
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 1, 5, 6, 10
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
BASE = 0x400000  # virtual address of the single PT_LOAD (offset 0)

C_WITH_LIBC = r"""
#include <stdio.h>
#include <string.h>
int shout(char *dst, const char *src, unsigned long n) {
    memcpy(dst, src, n);
    return printf("%s\n", dst);
}
"""

C_NO_LIBC = "int add_one(int x) { return x + 1; }\n"

C_MAIN = r"""
#include <stdio.h>
int main(void) { puts("hi"); return 0; }
"""


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def compile_c(tmp_path: Path, source: str, name: str, *flags: str, compiler: str = "gcc") -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    proc = subprocess.run(
        [compiler, *flags, "-o", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{compiler} failed:\n{proc.stderr}"
    return out


def make_elf(
    *,
    bits: int = 64,
    little: bool = True,
    machine: int = EM_X86_64,
    elf_type: int = ET_DYN,
    interp: Optional[str] = None,
    needed: tuple[str, ...] = (),
    verneed: tuple[tuple[str, tuple[str, ...]], ...] = (),
    with_dynamic: bool = True,
    with_strtab: bool = True,
    with_symtab: bool = True,
    strtab_vaddr_delta: int = 0,
    bad_needed_offset: bool = False,
    phentsize: Optional[int] = None,
    phnum: Optional[int] = None,
) -> bytes:
    """A minimal but well-formed ELF object: one PT_LOAD at ``BASE`` mapping
    the whole file, optional PT_INTERP, and PT_DYNAMIC with DT_NEEDED,
    DT_STRTAB/DT_STRSZ and DT_VERNEED (version needs such as GLIBC_2.17)."""
    e = "<" if little else ">"
    ehsize, ph_size = (64, 56) if bits == 64 else (52, 32)
    n_ph = 1 + (interp is not None) + with_dynamic

    # String table.
    strtab = bytearray(b"\0")
    offsets: dict[str, int] = {}

    def add(s: str) -> int:
        if s not in offsets:
            offsets[s] = len(strtab)
            strtab.extend(s.encode() + b"\0")
        return offsets[s]

    needed_offs = [add(n) for n in needed]
    ver_entries = [(add(f), [add(v) for v in vs]) for f, vs in verneed]

    blob = bytearray()
    cursor = ehsize + n_ph * ph_size
    interp_off = cursor
    if interp is not None:
        blob += interp.encode() + b"\0"
    strtab_off = cursor + len(blob)
    blob += strtab
    while (cursor + len(blob)) % 8:
        blob += b"\0"
    verneed_off = cursor + len(blob)
    for i, (file_off, names) in enumerate(ver_entries):
        last = i == len(ver_entries) - 1
        blob += struct.pack(e + "HHIII", 1, len(names), file_off, 16, 0 if last else 16 + 16 * len(names))
        for j, name_off in enumerate(names):
            blob += struct.pack(e + "IHHII", 0x1234, 0, 2 + j, name_off, 0 if j == len(names) - 1 else 16)
    while (cursor + len(blob)) % 8:
        blob += b"\0"
    dyn_off = cursor + len(blob)
    dyn_fmt = e + ("qQ" if bits == 64 else "iI")
    entries: list[tuple[int, int]] = [(DT_NEEDED, o + (10**6 if bad_needed_offset else 0)) for o in needed_offs]
    if with_strtab:
        entries += [(DT_STRTAB, BASE + strtab_off + strtab_vaddr_delta), (DT_STRSZ, len(strtab))]
    if with_symtab:  # a shared object has one; its contents are never read
        entries.append((DT_SYMTAB, BASE + strtab_off))
    if ver_entries:
        entries += [(DT_VERNEED, BASE + verneed_off), (DT_VERNEEDNUM, len(ver_entries))]
    entries.append((DT_NULL, 0))
    dynamic = b"".join(struct.pack(dyn_fmt, t, v) for t, v in entries)
    if with_dynamic:
        blob += dynamic
    total = cursor + len(blob)

    # Program headers.
    phdrs = []

    def ph(p_type: int, offset: int, vaddr: int, size: int) -> bytes:
        if bits == 64:
            return struct.pack(e + "IIQQQQQQ", p_type, 4, offset, vaddr, vaddr, size, size, 8)
        return struct.pack(e + "IIIIIIII", p_type, offset, vaddr, vaddr, size, size, 4, 4)

    phdrs.append(ph(1, 0, BASE, total))  # PT_LOAD
    if interp is not None:
        phdrs.append(ph(3, interp_off, BASE + interp_off, len(interp) + 1))  # PT_INTERP
    if with_dynamic:
        phdrs.append(ph(2, dyn_off, BASE + dyn_off, len(dynamic)))  # PT_DYNAMIC

    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    if bits == 64:
        rest = struct.pack(
            e + "HHIQQQIHHHHHH",
            elf_type, machine, 1, 0, ehsize, 0, 0, ehsize,
            ph_size if phentsize is None else phentsize, n_ph if phnum is None else phnum, 64, 0, 0,
        )  # fmt: skip
    else:
        rest = struct.pack(
            e + "HHIIIIIHHHHHH",
            elf_type, machine, 1, 0, ehsize, 0, 0, ehsize,
            ph_size if phentsize is None else phentsize, n_ph if phnum is None else phnum, 40, 0, 0,
        )  # fmt: skip
    data = ident + rest + b"".join(phdrs) + blob
    assert len(data) == total
    return bytes(data)


def write(tmp_path: Path, data: bytes, name: str = "obj.so") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def info_of(
    interpreter: Optional[str] = None,
    needed: tuple[str, ...] = (),
    version_needs: tuple[tuple[str, str], ...] = (),
) -> ElfInfo:
    return ElfInfo(64, True, EM_X86_64, ET_DYN, interpreter, needed, version_needs)


# --------------------------------------------------------------------------
# Real objects from the toolchain
# --------------------------------------------------------------------------


def test_gcc_shared_object_using_libc_is_glibc(tmp_path: Path) -> None:
    so = compile_c(tmp_path, C_WITH_LIBC, "withlibc.so", "-shared", "-fPIC")
    info = read_elf(str(so))
    assert info.elf_type == ET_DYN
    assert info.bits == (64 if sys.maxsize > 2**32 else 32)
    assert info.little_endian == (sys.byteorder == "little")
    assert info.interpreter is None
    assert "libc.so.6" in info.needed
    libs = {lib for lib, _ in info.version_needs}
    assert libs == {"libc.so.6"}
    versions = {v for _, v in info.version_needs}
    assert versions and all(v.startswith("GLIBC_2.") for v in versions), versions
    if platform.machine() == "x86_64":
        assert info.machine == EM_X86_64
        assert info.machine_name == "x86_64"
        assert info.describe() == "x86_64 64-bit little-endian"
        # printf/memcpy@GLIBC_2.2.5 is the x86_64 baseline.
        assert ("libc.so.6", "GLIBC_2.2.5") in info.version_needs
    family, why = libc_of(info)
    assert family == "glibc"
    assert "libc.so.6" in why


def test_gcc_nostdlib_object_needs_no_libc(tmp_path: Path) -> None:
    so = compile_c(tmp_path, C_NO_LIBC, "nolibc.so", "-shared", "-fPIC", "-nostdlib")
    info = read_elf(str(so))
    assert info.elf_type == ET_DYN
    assert info.needed == ()
    assert info.version_needs == ()
    assert info.interpreter is None
    assert libc_of(info) == (None, "needs no libc")


def test_gcc_executables_have_ld_linux_interpreter(tmp_path: Path) -> None:
    pie = read_elf(str(compile_c(tmp_path, C_MAIN, "pie", "-fPIE", "-pie")))
    assert pie.elf_type == ET_DYN
    assert pie.interpreter is not None and "ld-linux" in pie.interpreter
    assert libc_of(pie)[0] == "glibc"
    assert libc_of(pie)[1].startswith("PT_INTERP ")
    nopie = read_elf(str(compile_c(tmp_path, C_MAIN, "nopie", "-no-pie")))
    assert nopie.elf_type == ET_EXEC
    assert nopie.interpreter == pie.interpreter
    assert nopie.same_platform(pie)


def test_musl_gcc_shared_object_is_musl(tmp_path: Path) -> None:
    if shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc not installed (Debian package musl-tools)")
    so = compile_c(tmp_path, C_WITH_LIBC, "musl.so", "-shared", "-fPIC", compiler="musl-gcc")
    info = read_elf(str(so))
    assert "libc.so" in info.needed
    assert "libc.so.6" not in info.needed
    assert not any(v.startswith("GLIBC_") for _, v in info.version_needs)
    family, why = libc_of(info)
    assert family == "musl"
    assert "libc.so" in why
    glibc = read_elf(str(compile_c(tmp_path, C_WITH_LIBC, "glibc.so", "-shared", "-fPIC")))
    assert info.same_platform(glibc)


def test_running_interpreter() -> None:
    exe = os.path.realpath(sys.executable)
    info = read_elf(exe)
    assert info.interpreter is not None
    # The glibc host, or one of the musl-linked interpreters the e2e suite runs this suite on.
    try:
        on_glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        on_glibc = False
    assert ("/ld-linux" if on_glibc else "/ld-musl-") in info.interpreter
    assert info.elf_type in (ET_EXEC, ET_DYN)
    assert libc_of(info)[0] == ("glibc" if on_glibc else "musl")
    assert info.bits == (64 if sys.maxsize > 2**32 else 32)
    assert info.little_endian == (sys.byteorder == "little")
    if platform.machine() == "x86_64":
        assert info.machine == EM_X86_64


# --------------------------------------------------------------------------
# Hand-made objects: foreign platforms
# --------------------------------------------------------------------------


def test_handmade_x86_64_reference(tmp_path: Path) -> None:
    data = make_elf(needed=("libfoo.so.1", "libc.so.6"), verneed=(("libc.so.6", ("GLIBC_2.2.5", "GLIBC_2.34")),))
    info = read_elf(write(tmp_path, data))
    assert (info.bits, info.little_endian, info.machine, info.elf_type) == (64, True, EM_X86_64, ET_DYN)
    assert info.needed == ("libfoo.so.1", "libc.so.6")
    assert info.version_needs == (("libc.so.6", "GLIBC_2.2.5"), ("libc.so.6", "GLIBC_2.34"))
    assert info.interpreter is None
    assert "x86_64 64-bit little-endian" in repr(info)


def test_foreign_architecture_aarch64(tmp_path: Path) -> None:
    info = read_elf(write(tmp_path, make_elf(machine=EM_AARCH64, needed=("libc.so.6",))))
    assert info.machine == 183
    assert info.machine_name == "aarch64"
    assert info.describe() == "aarch64 64-bit little-endian"
    here = read_elf(write(tmp_path, make_elf(machine=EM_X86_64), "x.so"))
    assert not info.same_platform(here)
    assert libc_of(info)[0] == "glibc"


def test_32_bit_class(tmp_path: Path) -> None:
    data = make_elf(
        bits=32,
        machine=EM_386,
        needed=("libc.so.6", "libm.so.6"),
        verneed=(("libc.so.6", ("GLIBC_2.0", "GLIBC_2.1.3")), ("libm.so.6", ("GLIBC_2.29",))),
    )
    info = read_elf(write(tmp_path, data))
    assert (info.bits, info.little_endian, info.machine) == (32, True, EM_386)
    assert info.describe() == "i386 32-bit little-endian"
    assert info.needed == ("libc.so.6", "libm.so.6")
    assert info.version_needs == (
        ("libc.so.6", "GLIBC_2.0"),
        ("libc.so.6", "GLIBC_2.1.3"),
        ("libm.so.6", "GLIBC_2.29"),
    )
    same_machine_64 = read_elf(write(tmp_path, make_elf(bits=64, machine=EM_386), "x.so"))
    assert not info.same_platform(same_machine_64)


def test_big_endian_64(tmp_path: Path) -> None:
    data = make_elf(
        little=False,
        machine=EM_PPC64,
        needed=("libc.so.6",),
        verneed=(("libc.so.6", ("GLIBC_2.17",)),),
    )
    info = read_elf(write(tmp_path, data))
    assert (info.bits, info.little_endian, info.machine) == (64, False, EM_PPC64)
    assert info.describe() == "powerpc64 64-bit big-endian"
    assert info.needed == ("libc.so.6",)
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"),)
    little = read_elf(write(tmp_path, make_elf(machine=EM_PPC64), "le.so"))
    assert not info.same_platform(little)
    assert info.same_platform(read_elf(write(tmp_path, make_elf(little=False, machine=EM_PPC64), "be.so")))


def test_big_endian_32_musl_executable(tmp_path: Path) -> None:
    data = make_elf(
        bits=32,
        little=False,
        machine=EM_MIPS,
        elf_type=ET_EXEC,
        interp="/lib/ld-musl-mips.so.1",
        needed=("libc.so",),
    )
    info = read_elf(write(tmp_path, data))
    assert (info.bits, info.little_endian, info.machine, info.elf_type) == (32, False, EM_MIPS, ET_EXEC)
    assert info.interpreter == "/lib/ld-musl-mips.so.1"
    assert info.describe() == "mips 32-bit big-endian"
    assert libc_of(info) == ("musl", "PT_INTERP /lib/ld-musl-mips.so.1")


def test_et_exec_with_glibc_interpreter(tmp_path: Path) -> None:
    info = read_elf(write(tmp_path, make_elf(elf_type=ET_EXEC, interp="/lib64/ld-linux-x86-64.so.2")))
    assert info.elf_type == ET_EXEC
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert info.needed == ()
    assert libc_of(info)[0] == "glibc"


def test_unknown_machine_is_named_by_number(tmp_path: Path) -> None:
    info = read_elf(write(tmp_path, make_elf(machine=0x1234)))
    assert 0x1234 not in MACHINES
    assert info.machine_name == f"machine {0x1234}"


def test_no_dynamic_segment(tmp_path: Path) -> None:
    info = read_elf(write(tmp_path, make_elf(with_dynamic=False)))
    assert info.needed == () and info.version_needs == ()
    assert libc_of(info)[0] is None


# --------------------------------------------------------------------------
# libc_of evidence rules
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "family"),
    [
        (info_of(interpreter="/lib/ld-musl-x86_64.so.1"), "musl"),
        (info_of(interpreter="/lib/ld-musl-aarch64.so.1", needed=("libc.so.6",)), "musl"),
        (info_of(interpreter="/lib64/ld-linux-x86-64.so.2"), "glibc"),
        (info_of(interpreter="/lib/ld-linux-armhf.so.3"), "glibc"),
        (info_of(interpreter="/lib/ld.so.1"), "glibc"),
        (info_of(needed=("libc.musl-x86_64.so.1",)), "musl"),
        (info_of(needed=("libc.so",)), "musl"),
        (info_of(needed=("libfoo.so", "libc.so.6")), "glibc"),
        (info_of(needed=("ld-linux-x86-64.so.2",)), "glibc"),
        (info_of(version_needs=(("libstdc++.so.6", "GLIBCXX_3.4"), ("libfoo.so", "GLIBC_2.14"))), "glibc"),
        (info_of(needed=("libm.so.6",)), "glibc"),
        (info_of(needed=("libpthread.so.0",)), "glibc"),
        (info_of(needed=("libpython3.11.so.1.0",)), None),
        (info_of(version_needs=(("libstdc++.so.6", "GLIBCXX_3.4"),)), None),
        (info_of(), None),
    ],
)
def test_libc_of_rules(info: ElfInfo, family: Optional[str]) -> None:
    got, why = libc_of(info)
    assert got == family
    assert isinstance(why, str) and why


# --------------------------------------------------------------------------
# Malformed input: only ElfError, never another exception
# --------------------------------------------------------------------------


def _read_outcome(path: str) -> Optional[str]:
    """None if parsed, the message if ElfError; anything else propagates."""
    try:
        read_elf(path)
    except ElfError as exc:
        return str(exc)
    return None


def _facts(info: ElfInfo) -> tuple:  # type: ignore[type-arg]
    return (
        info.bits,
        info.little_endian,
        info.machine,
        info.elf_type,
        info.interpreter,
        info.needed,
        info.version_needs,
    )


def test_every_prefix_of_a_real_object(tmp_path: Path) -> None:
    real = compile_c(tmp_path, C_WITH_LIBC, "real.so", "-shared", "-fPIC")
    data = real.read_bytes()
    full = _facts(read_elf(str(real)))
    path = str(tmp_path / "cut.so")
    cuts = list(range(min(len(data), 4096) + 1)) + list(range(4097, len(data), 7))
    first_parsed = None
    for n in cuts:
        with open(path, "wb") as f:
            f.write(data[:n])
        try:
            info = read_elf(path)
        except ElfError:
            # Once a prefix holds every structure read, longer ones do too.
            assert first_parsed is None, f"prefix {n} fails after prefix {first_parsed} parsed"
            continue
        first_parsed = n if first_parsed is None else first_parsed
        # A prefix that parses must give exactly the full file's facts.
        assert _facts(info) == full, n
    # The needed list lives in the dynamic segment, past the ELF headers.
    assert first_parsed is None or first_parsed > 64


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_every_prefix_of_a_handmade_object(tmp_path: Path, bits: int, little: bool) -> None:
    data = make_elf(
        bits=bits,
        little=little,
        interp="/lib/ld-musl-x86_64.so.1",
        needed=("libc.so.6", "libz.so.1"),
        verneed=(("libc.so.6", ("GLIBC_2.2.5",)),),
    )
    path = str(tmp_path / "cut.so")
    for n in range(len(data)):
        with open(path, "wb") as f:
            f.write(data[:n])
        # The dynamic section is last: every proper prefix is truncated.
        assert _read_outcome(path) is not None, n
    with open(path, "wb") as f:
        f.write(data)
    assert _read_outcome(path) is None


def test_bit_flips_raise_only_elf_error(tmp_path: Path) -> None:
    import random

    rnd = random.Random(20240601)
    base = make_elf(needed=("libc.so.6",), interp="/lib/ld.so.1", verneed=(("libc.so.6", ("GLIBC_2.3",)),))
    path = str(tmp_path / "flip.so")
    for _ in range(1500):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 6)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        with open(path, "wb") as f:
            f.write(data)
        _read_outcome(path)  # raises if anything but ElfError escapes


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7f",
        b"\x7fEL",
        b"\x7fELF",
        b"\x7fELF\x02\x01\x01",
        b"\x7fELF" + bytes(12),
        b"\x7fELF\x02\x01\x01" + bytes(9 + 10),
        b"MZ\x90\x00" + bytes(200),
        b"#!/bin/sh\necho hello\n" * 10,
        b"\x7fELG" + bytes(100),
        b"\x00" * 4096,
        b"\xff" * 4096,
        "not an elf file at all \u00e9".encode() * 20,
    ],
)
def test_non_elf_and_short_bytes(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ElfError):
        read_elf(write(tmp_path, data))


def test_empty_file_message(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="not an ELF file"):
        read_elf(write(tmp_path, b""))


@pytest.mark.parametrize(("index", "value"), [(4, 0), (4, 3), (5, 0), (5, 3)])
def test_bad_class_or_byte_order(tmp_path: Path, index: int, value: int) -> None:
    data = bytearray(make_elf(needed=("libc.so.6",)))
    data[index] = value
    with pytest.raises(ElfError):
        read_elf(write(tmp_path, bytes(data)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phentsize": 8, "needed": ("libc.so.6",)},
        {"phnum": 5000, "needed": ("libc.so.6",)},
        {"phnum": 40, "needed": ("libc.so.6",)},  # headers run off the end
        {"with_strtab": False, "needed": ("libc.so.6",)},
        {"strtab_vaddr_delta": 1 << 30, "needed": ("libc.so.6",)},
        {"bad_needed_offset": True, "needed": ("libc.so.6",)},
        {"bits": 32, "phentsize": 16, "needed": ("libc.so.6",)},
        {"bits": 32, "with_strtab": False, "needed": ("libc.so.6",)},
    ],
)
def test_malformed_headers(tmp_path: Path, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ElfError):
        read_elf(write(tmp_path, make_elf(**kwargs)))


def test_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        read_elf(str(tmp_path))


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        read_elf(str(tmp_path / "absent.so"))


def test_elf_error_is_ours() -> None:
    assert issubclass(ElfError, SoabiShimError)
