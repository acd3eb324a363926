"""elf.py on hand-made ELF files in ``tmp_path``: exact facts and exact
refusal messages, each bound just inside and just past, 32-bit and
big-endian paths, Verneed chains, the windowed reads of large string tables.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable, Optional

import pytest

from soabi_shim import elf
from soabi_shim.elf import ElfInfo, libc_of, read_elf, read_elf_fd, refusal
from soabi_shim.errors import ElfError
from tests.unit.test_elf import (
    BASE,
    DT_NEEDED,
    DT_NULL,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMTAB,
    DT_VERNEED,
    DT_VERNEEDNUM,
    EM_AARCH64,
    EM_X86_64,
    ET_DYN,
    ET_EXEC,
    info_of,
    make_elf,
    write,
)
from tests.unit.test_elf_bounds import custom_elf, verneed_blob

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3

# --------------------------------------------------------------------------
# Builders: any program headers, any dynamic entries, 32/64-bit, LE/BE
# --------------------------------------------------------------------------


def sizes(bits: int) -> tuple[int, int]:
    """(ELF header size, program header size)."""
    return (64, 56) if bits == 64 else (52, 32)


def header(
    bits: int = 64,
    little: bool = True,
    *,
    phnum: int = 0,
    phoff: Optional[int] = None,
    phentsize: Optional[int] = None,
    e_type: int = ET_DYN,
    machine: int = EM_X86_64,
) -> bytes:
    e = "<" if little else ">"
    ehsize, phsize = sizes(bits)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    fmt = "HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH"
    phoff = ehsize if phoff is None else phoff
    phentsize = phsize if phentsize is None else phentsize
    return ident + struct.pack(e + fmt, e_type, machine, 1, 0, phoff, 0, 0, ehsize, phentsize, phnum, 0, 0, 0)


def phdr(bits: int, little: bool, p_type: int, offset: int, vaddr: int, filesz: int) -> bytes:
    e = "<" if little else ">"
    if bits == 64:
        return struct.pack(e + "IIQQQQQQ", p_type, 4, offset, vaddr, vaddr, filesz, filesz, 8)
    return struct.pack(e + "IIIIIIII", p_type, offset, vaddr, vaddr, filesz, filesz, 4, 4)


def dyn(bits: int, little: bool, entries: list[tuple[int, int]]) -> bytes:
    fmt = ("<" if little else ">") + ("qQ" if bits == 64 else "iI")
    return b"".join(struct.pack(fmt, t, v) for t, v in entries)


def dso(
    strtab: bytes,
    entries: Callable[[int, int], list[tuple[int, int]]],
    *,
    bits: int = 64,
    little: bool = True,
    extra: bytes = b"",
    strtab_last: bool = False,
    dyn_filesz: Optional[int] = None,
) -> bytes:
    """ET_DYN with one PT_LOAD (the whole file at BASE) and PT_DYNAMIC.

    ``entries(strtab_vaddr, extra_vaddr)`` gives the dynamic entries, taken
    as they are (no DT_NULL added); ``extra`` is placed 8-aligned (a Verneed
    blob, say).  With ``strtab_last`` the string table ends the file.
    """
    ehsize, phsize = sizes(bits)
    start = ehsize + 2 * phsize

    def pad(n: int) -> bytes:
        return bytes(-n % 8)

    # Two passes: the size of the dynamic section does not depend on values.
    probe = dyn(bits, little, entries(0, 0))
    body = bytearray()
    if not strtab_last:
        strtab_at = start
        body += strtab + pad(start + len(strtab))
    extra_at = start + len(body)
    body += extra + pad(extra_at + len(extra))
    dyn_at = start + len(body)
    body += bytes(len(probe))
    if strtab_last:
        strtab_at = start + len(body)
        body += strtab
    table = dyn(bits, little, entries(BASE + strtab_at, BASE + extra_at))
    body[dyn_at - start : dyn_at - start + len(table)] = table
    total = start + len(body)
    phdrs = phdr(bits, little, PT_LOAD, 0, BASE, total)
    phdrs += phdr(bits, little, PT_DYNAMIC, dyn_at, BASE + dyn_at, len(table) if dyn_filesz is None else dyn_filesz)
    return header(bits, little, phnum=2) + phdrs + bytes(body)


def needs(offsets: list[int]) -> Callable[[int, int], list[tuple[int, int]]]:
    """DT_NEEDED at ``offsets`` with a well-formed string table and symtab."""

    def entries(strtab_vaddr: int, _extra: int) -> list[tuple[int, int]]:
        return [(DT_NEEDED, o) for o in offsets] + [(DT_STRTAB, strtab_vaddr), (DT_SYMTAB, strtab_vaddr)]

    return entries


def with_strsz(strtab: bytes, offsets: list[int]) -> Callable[[int, int], list[tuple[int, int]]]:
    def entries(strtab_vaddr: int, extra: int) -> list[tuple[int, int]]:
        return [*needs(offsets)(strtab_vaddr, extra), (DT_STRSZ, len(strtab)), (DT_NULL, 0)]

    return entries


def outcome(tmp_path: Path, data: bytes, name: str = "k.so") -> str:
    try:
        info = read_elf(write(tmp_path, data, name))
    except ElfError as exc:
        return str(exc)
    return f"parsed {info.needed!r} {info.version_needs!r}"


def error(tmp_path: Path, data: bytes, name: str = "k.so") -> str:
    with pytest.raises(ElfError) as exc:
        read_elf(write(tmp_path, data, name))
    return str(exc.value)


def set_phdr_filesz(data: bytes, index: int, filesz: int, bits: int = 64) -> bytes:
    ehsize, phsize = sizes(bits)
    out = bytearray(data)
    at = ehsize + index * phsize + (32 if bits == 64 else 16)
    if bits == 64:
        struct.pack_into("<QQ", out, at, filesz, filesz)
    else:
        struct.pack_into("<II", out, at, filesz, filesz)
    return bytes(out)


# --------------------------------------------------------------------------
# libc_of: the family and the exact evidence, rule by rule
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (info_of(interpreter="/lib/ld-musl-x86_64.so.1"), ("musl", "PT_INTERP /lib/ld-musl-x86_64.so.1")),
        (info_of(interpreter="/lib64/ld-linux-x86-64.so.2"), ("glibc", "PT_INTERP /lib64/ld-linux-x86-64.so.2")),
        (info_of(interpreter="/lib/ld.so.1"), ("glibc", "PT_INTERP /lib/ld.so.1")),
        # An interpreter of neither family: the needed libraries decide.
        (info_of(interpreter="/lib/ld-other.so.2", needed=("libc.so",)), ("musl", "needs libc.so")),
        (info_of(interpreter="/lib/LD-MUSL.so", needed=("libc.so.6",)), ("glibc", "needs libc.so.6")),
        (info_of(interpreter="", needed=("libc.so.6",)), ("glibc", "needs libc.so.6")),
        (info_of(needed=("libc.musl-x86_64.so.1",)), ("musl", "needs libc.musl-x86_64.so.1")),
        (info_of(needed=("libz.so.1", "libc.so")), ("musl", "needs libc.so")),
        (info_of(needed=("libc.so.6", "libc.so")), ("glibc", "needs libc.so.6")),
        (info_of(needed=("libc.so", "libc.so.6")), ("musl", "needs libc.so")),
        (info_of(needed=("libc.so.7",)), (None, "needs no libc")),
        (info_of(needed=("LIBC.SO.6", "libc.musl")), (None, "needs no libc")),
        (info_of(needed=("ld-linux-aarch64.so.1",)), ("glibc", "needs ld-linux-aarch64.so.1")),
        (info_of(needed=("xld-linux.so",)), (None, "needs no libc")),
        (
            info_of(version_needs=(("libfoo.so", "GLIBCXX_3.4"), ("libbar.so", "GLIBC_2.14"))),
            ("glibc", "needs GLIBC_2.14 from libbar.so"),
        ),
        (info_of(version_needs=(("libfoo.so", "glibc_2.14"),)), (None, "needs no libc")),
        # The version needs come before the glibc-only companions.
        (
            info_of(needed=("libm.so.6",), version_needs=(("libm.so.6", "GLIBC_2.29"),)),
            ("glibc", "needs GLIBC_2.29 from libm.so.6"),
        ),
        (info_of(needed=("libz.so.1", "libm.so.6")), ("glibc", "needs libm.so.6")),
        (info_of(needed=("libpthread.so.0",)), ("glibc", "needs libpthread.so.0")),
        (info_of(needed=("libdl.so.2",)), ("glibc", "needs libdl.so.2")),
        (info_of(needed=("librt.so.1",)), ("glibc", "needs librt.so.1")),
        (info_of(needed=("libm.so",)), (None, "needs no libc")),
    ],
)
def test_libc_of_evidence(info: ElfInfo, expected: tuple[Optional[str], str]) -> None:
    assert libc_of(info) == expected


# --------------------------------------------------------------------------
# refusal: every reason, word for word, and when there is none
# --------------------------------------------------------------------------


def test_refusal_reasons() -> None:
    ok = ElfInfo(64, True, EM_X86_64, ET_DYN, None, ("libc.so.6",), ())
    assert ok.dynamic is True and ok.loads == 1  # the defaults describe a loadable object
    host = ElfInfo(64, True, EM_X86_64, ET_EXEC, "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",), ())
    assert refusal(ok, host, "glibc") is None
    assert refusal(ok, None, None) is None
    exe = ElfInfo(64, True, EM_X86_64, ET_EXEC, None, (), ())
    assert refusal(exe, host, "glibc") == "not an ELF shared object (e_type 2)"
    arm = ElfInfo(64, True, EM_AARCH64, ET_DYN, None, ("libc.so.6",), ())
    assert refusal(arm, host, "glibc") == (
        "ELF for aarch64 64-bit little-endian, interpreter is x86_64 64-bit little-endian"
    )
    assert refusal(arm, None, "glibc") is None  # no interpreter file: the platform is not checked
    big = ElfInfo(64, False, EM_X86_64, ET_DYN, None, (), ())
    assert refusal(big, host, None) == "ELF for x86_64 64-bit big-endian, interpreter is x86_64 64-bit little-endian"
    musl = ElfInfo(64, True, EM_X86_64, ET_DYN, "/lib/ld-musl-x86_64.so.1", (), ())
    assert refusal(musl, host, "glibc") == (
        "linked against musl (PT_INTERP /lib/ld-musl-x86_64.so.1), interpreter runs on glibc"
    )
    assert refusal(musl, host, "musl") is None
    assert refusal(musl, host, None) is None  # the interpreter's libc is unknown
    assert refusal(ElfInfo(64, True, EM_X86_64, ET_DYN, None, (), ()), host, "musl") is None  # no libc at all
    no_load = ElfInfo(64, True, EM_X86_64, ET_DYN, None, (), (), True, 0)
    assert refusal(no_load, host, "glibc") == "not an ELF shared object (no loadable segment)"
    no_dyn = ElfInfo(64, True, EM_X86_64, ET_DYN, None, (), (), False, 2)
    assert refusal(no_dyn, host, "glibc") == "not an ELF shared object (no dynamic section with a symbol table)"
    assert refusal(ElfInfo(64, True, EM_X86_64, ET_DYN, None, (), (), True, 3), host, "glibc") is None


def test_describe_and_same_platform() -> None:
    be = ElfInfo(32, False, 8, ET_DYN, None, (), ())
    assert be.describe() == "mips 32-bit big-endian"
    assert "mips 32-bit big-endian type=3 interp=None needed=()" in repr(be)
    assert be.same_platform(ElfInfo(32, False, 8, ET_EXEC, "/lib/ld.so.1", ("libc.so",), ()))
    assert not be.same_platform(ElfInfo(32, True, 8, ET_DYN, None, (), ()))


# --------------------------------------------------------------------------
# read_elf / read_elf_fd: opening, errors and their messages
# --------------------------------------------------------------------------


def test_read_elf_opens_without_blocking_and_nofollow_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, make_elf(needed=("libc.so.6",)))
    seen: list[int] = []
    real_open = os.open

    def spy(p: str, flags: int, *args: object, **kwargs: object) -> int:
        seen.append(flags)
        return real_open(p, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    assert read_elf(path).needed == ("libc.so.6",)
    assert read_elf(path, follow_symlinks=False).needed == ("libc.so.6",)
    follow, nofollow = seen
    for flags in seen:
        assert flags & os.O_NONBLOCK and flags & os.O_CLOEXEC
        assert flags & os.O_ACCMODE == os.O_RDONLY
    assert not follow & os.O_NOFOLLOW
    assert nofollow & os.O_NOFOLLOW


def test_read_elf_error_messages(tmp_path: Path) -> None:
    with pytest.raises(ElfError) as exc:
        read_elf(str(tmp_path / "absent.so"))
    assert str(exc.value) == "cannot read: No such file or directory"
    (tmp_path / "link.so").symlink_to(write(tmp_path, make_elf()))
    with pytest.raises(ElfError) as exc:
        read_elf(str(tmp_path / "link.so"), follow_symlinks=False)
    assert str(exc.value) == f"cannot read: {os.strerror(40)}"  # ELOOP
    with pytest.raises(ElfError) as exc:
        read_elf(str(tmp_path))
    assert str(exc.value) == "cannot read: not a regular file"


def test_read_elf_fd_error_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, make_elf(needed=("libc.so.6",)))
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(ElfError) as exc:
        read_elf_fd(fd)  # closed: fstat fails
    assert str(exc.value) == "cannot read: Bad file descriptor"
    wfd = os.open(path, os.O_WRONLY)
    try:
        with pytest.raises(ElfError) as exc:
            read_elf_fd(wfd)  # fstat works, every read fails
        assert str(exc.value) == "cannot read: Bad file descriptor"
    finally:
        os.close(wfd)

    def broken(_reader: object) -> ElfInfo:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(elf, "_parse", broken)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ElfError) as exc:
            read_elf_fd(fd)
        assert str(exc.value) == "malformed ELF file"
    finally:
        os.close(fd)


def test_file_size_bound_is_inclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_elf(needed=("libc.so.6",))
    path = write(tmp_path, data)
    monkeypatch.setattr(elf, "MAX_FILE_SIZE", len(data))
    assert read_elf(path).needed == ("libc.so.6",)
    monkeypatch.setattr(elf, "MAX_FILE_SIZE", len(data) - 1)
    with pytest.raises(ElfError) as exc:
        read_elf(path)
    assert str(exc.value) == f"file too large for an extension module ({len(data)} bytes)"


# --------------------------------------------------------------------------
# _Reader: out-of-range reads are refused before reading; counters
# --------------------------------------------------------------------------


def test_reader_bounds_and_counters(tmp_path: Path) -> None:
    path = write(tmp_path, bytes(range(100)))
    fd = os.open(path, os.O_RDONLY)
    try:
        r = elf._Reader(fd, 100)
        assert (r.reads, r.bytes_read) == (0, 0)
        assert r.read(0, 4) == bytes(range(4))
        assert r.read(96, 4) == bytes(range(96, 100))  # up to the very end
        assert r.read(100, 0) == b""
        assert (r.reads, r.bytes_read) == (3, 8)
        for offset, length in [(-1, 4), (0, -1), (97, 4), (100, 1), (99, 2), (0, 101), (1 << 40, 1)]:
            with pytest.raises(ElfError) as exc:
                r.read(offset, length)
            assert str(exc.value) == "truncated ELF file"
        assert (r.reads, r.bytes_read) == (3, 8)  # refused before reading
        shrunk = elf._Reader(fd, 200)  # the file is shorter than its recorded size
        with pytest.raises(ElfError) as exc:
            shrunk.read(90, 20)
        assert str(exc.value) == "truncated ELF file"
    finally:
        os.close(fd)


@pytest.fixture
def preads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (length, offset) of every ``os.pread`` from here on."""
    calls: list[tuple[int, int]] = []
    pread = os.pread

    def counting(fd: int, length: int, offset: int) -> bytes:
        calls.append((length, offset))
        return pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting)
    return calls


def test_reader_serves_the_head_from_one_read(tmp_path: Path, preads: list[tuple[int, int]]) -> None:
    head = elf.HEAD
    data = bytes(i % 251 for i in range(head + 100))
    path = write(tmp_path, data)
    calls = preads
    fd = os.open(path, os.O_RDONLY)
    try:
        r = elf._Reader(fd, len(data))
        assert r.read(0, 16) == data[:16]
        assert calls == [(head, 0)]  # the whole head, once
        assert r.read(64, 56) == data[64:120]
        assert r.read(head - 8, 8) == data[head - 8 : head]  # ends exactly at the head's end
        assert r.read(head, 0) == b""
        assert calls == [(head, 0)]
        assert r.read(head - 8, 9) == data[head - 8 : head + 1]  # one byte past it: read itself
        assert r.read(head + 90, 10) == data[head + 90 :]
        assert r.read(head + 100, 0) == b""  # nothing to read: no call
        assert calls == [(head, 0), (9, head - 8), (10, head + 90)]
        assert (r.reads, r.bytes_read, r.preads) == (7, 16 + 56 + 8 + 9 + 10, 3)
        small = elf._Reader(fd, 100)  # a file smaller than the head is read whole
        calls.clear()
        assert small.read(96, 4) == data[96:100]
        assert small.read(0, 4) == data[:4]
        assert calls == [(100, 0)] and small.preads == 1
        late = elf._Reader(fd, len(data))  # a first read past the head reads no head
        calls.clear()
        assert late.read(head + 1, 4) == data[head + 1 : head + 5]
        assert calls == [(4, head + 1)] and late.head is None
        assert late.read(0, 4) == data[:4]
        assert calls == [(4, head + 1), (head, 0)] and late.preads == 2
    finally:
        os.close(fd)


def test_reader_head_of_a_file_that_shrank(tmp_path: Path) -> None:
    path = write(tmp_path, bytes(range(100)))
    fd = os.open(path, os.O_RDONLY)
    try:
        r = elf._Reader(fd, 1000)  # recorded larger than it now is
        assert r.read(0, 100) == bytes(range(100))  # what is there is served
        for offset, length in [(96, 8), (100, 1), (500, 10)]:
            with pytest.raises(ElfError) as exc:
                r.read(offset, length)
            assert str(exc.value) == "truncated ELF file"
        assert r.read(500, 0) == b""
    finally:
        os.close(fd)


def test_a_small_extension_costs_one_read(tmp_path: Path, preads: list[tuple[int, int]]) -> None:
    names = [b"libc.musl-x86_64.so.1"]
    strtab = b"\0" + b"\0".join(names) + b"\0"
    data = custom_elf(strtab, [1])
    assert len(data) <= elf.HEAD
    path = write(tmp_path, data)
    assert read_elf(path).needed == ("libc.musl-x86_64.so.1",)
    assert preads == [(len(data), 0)]  # the whole file, once


# --------------------------------------------------------------------------
# The ELF header: short files, class and byte order, header-only files
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x7fEL", "not an ELF file"),
        (b"\x7fELF", "truncated ELF file"),
        (b"\x7fELF\x02\x01", "truncated ELF file"),
        (b"\x7fELF" + bytes(11), "truncated ELF file"),
        (b"MZ\x90\x00\x01\x02", "not an ELF file"),
        (b"\x7fELG" + bytes(11), "not an ELF file"),
        (b"\x7fELG" + bytes(12), "not an ELF file"),
        (b"\x7fELF\x02\x01\x01" + bytes(9), "truncated ELF file"),  # a whole ident, no header
        (b"\x7fELF\x00\x01\x01" + bytes(9), "malformed ELF header"),
        (b"\x7fELF\x02\x01\x01" + bytes(9 + 47), "truncated ELF file"),
        (b"\x7fELF\x01\x01\x01" + bytes(9 + 35), "truncated ELF file"),
    ],
)
def test_short_files(tmp_path: Path, data: bytes, message: str) -> None:
    assert error(tmp_path, data) == message


@pytest.mark.parametrize(("index", "value"), [(4, 0), (4, 3), (5, 0), (5, 3)])
def test_bad_class_or_byte_order_message(tmp_path: Path, index: int, value: int) -> None:
    data = bytearray(make_elf(needed=("libc.so.6",)))
    data[index] = value
    assert error(tmp_path, bytes(data)) == "malformed ELF header"


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_header_only_file(tmp_path: Path, bits: int, little: bool) -> None:
    # No program headers at all; e_phoff and e_phentsize are then ignored.
    data = header(bits, little, phnum=0, phoff=1 << 30, phentsize=0, machine=EM_AARCH64, e_type=ET_EXEC)
    assert len(data) == sizes(bits)[0]
    info = read_elf(write(tmp_path, data))
    assert (info.bits, info.little_endian, info.machine, info.elf_type) == (bits, little, EM_AARCH64, ET_EXEC)
    assert (info.interpreter, info.needed, info.version_needs, info.dynamic, info.loads) == (None, (), (), False, 0)


def test_program_header_count_bound(tmp_path: Path) -> None:
    top = elf.MAX_PROGRAM_HEADERS
    ok = header(phnum=top) + bytes(56 * top)  # PT_NULL entries
    info = read_elf(write(tmp_path, ok))
    assert info.loads == 0 and not info.dynamic
    bad = header(phnum=top + 1) + bytes(56 * (top + 1))
    assert error(tmp_path, bad) == f"too many ELF program headers ({top + 1} > {top})"


@pytest.mark.parametrize(("bits", "size"), [(64, 32), (32, 56)])
def test_program_header_size_message(tmp_path: Path, bits: int, size: int) -> None:
    data = make_elf(bits=bits, phentsize=size, needed=("libc.so.6",))
    assert error(tmp_path, data) == "malformed ELF program headers"


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_several_loads_and_interpreter(tmp_path: Path, bits: int, little: bool) -> None:
    ehsize, phsize = sizes(bits)
    start = ehsize + 4 * phsize
    interp = b"/lib/ld-musl-armhf.so.1\0"
    data = header(bits, little, phnum=4)
    data += phdr(bits, little, PT_LOAD, 0, BASE, start)
    data += phdr(bits, little, 6, 0, 0, 0)  # PT_PHDR: ignored
    data += phdr(bits, little, PT_INTERP, start, BASE + start, len(interp))
    data += phdr(bits, little, PT_LOAD, start, 0x800000, len(interp))
    data += interp
    info = read_elf(write(tmp_path, data))
    assert info.interpreter == "/lib/ld-musl-armhf.so.1"
    assert (info.bits, info.little_endian, info.loads, info.dynamic) == (bits, little, 2, False)


def test_two_dynamic_or_two_interp(tmp_path: Path) -> None:
    interp = b"/lib/ld.so.1\0"
    start = 64 + 3 * 56
    two_interp = header(phnum=3) + phdr(64, True, PT_LOAD, 0, BASE, start + len(interp))
    two_interp += phdr(64, True, PT_INTERP, start, 0, len(interp)) * 2 + interp
    assert error(tmp_path, two_interp) == "malformed ELF program headers (two PT_INTERP)"
    two_dyn = header(phnum=3) + phdr(64, True, PT_LOAD, 0, BASE, start + 16)
    two_dyn += phdr(64, True, PT_DYNAMIC, start, 0, 16) * 2 + bytes(16)
    assert error(tmp_path, two_dyn) == "malformed ELF program headers (two PT_DYNAMIC)"


# --------------------------------------------------------------------------
# PT_INTERP: the name, its NUL, its length bound, bytes that are not UTF-8
# --------------------------------------------------------------------------


def test_interpreter_names(tmp_path: Path) -> None:
    # Stops at the first NUL, even when more follow.
    assert read_elf(write(tmp_path, make_elf(interp="/lib/ld.so.1\0junk"))).interpreter == "/lib/ld.so.1"
    assert read_elf(write(tmp_path, make_elf(interp=""), "e.so")).interpreter == ""
    # Not UTF-8: replaced, never an exception.
    data = make_elf(interp="/lib/ld-#.so.1").replace(b"ld-#", b"ld-\xff")
    assert read_elf(write(tmp_path, data, "u.so")).interpreter == "/lib/ld-\ufffd.so.1"
    # No NUL in PT_INTERP: the segment is the name.
    data = set_phdr_filesz(make_elf(interp="/lib/ld-musl-x86_64.so.1"), 1, len("/lib/ld-musl"))
    assert read_elf(write(tmp_path, data, "n.so")).interpreter == "/lib/ld-musl"


def test_interpreter_length_bound(tmp_path: Path) -> None:
    top = elf.MAX_STRING
    assert read_elf(write(tmp_path, make_elf(interp="/" * top))).interpreter == "/" * top
    unterminated = set_phdr_filesz(make_elf(interp="/" * top), 1, top)
    assert read_elf(write(tmp_path, unterminated, "u.so")).interpreter == "/" * top
    assert error(tmp_path, make_elf(interp="/" * (top + 1)), "l.so") == f"ELF name longer than {top} bytes"
    long32 = make_elf(bits=32, little=False, interp="/" * (top + 1))
    assert error(tmp_path, long32, "b.so") == f"ELF name longer than {top} bytes"


# --------------------------------------------------------------------------
# The dynamic section: entries, bounds, mapping addresses to offsets
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_dynamic_facts_all_classes(tmp_path: Path, bits: int, little: bool) -> None:
    strtab = b"\0libfoo.so.1\0libc.so.6\0GLIBC_2.17\0GLIBC_2.4\0libm.so.6\0GLIBC_2.29\0"
    e = "<" if little else ">"
    vn = struct.pack(e + "HHIII", 1, 2, 13, 16, 48)
    vn += struct.pack(e + "IHHII", 1, 0, 2, 23, 16) + struct.pack(e + "IHHII", 1, 0, 3, 34, 0)
    vn += struct.pack(e + "HHIII", 1, 1, 44, 16, 0) + struct.pack(e + "IHHII", 1, 0, 4, 54, 0)

    def entries(s: int, x: int) -> list[tuple[int, int]]:
        return [
            (DT_NEEDED, 1),
            (DT_NEEDED, 13),
            (DT_NEEDED, 44),
            (0x7000_0001, 5),  # unknown: ignored
            (DT_STRTAB, s),
            (DT_STRSZ, len(strtab)),
            (DT_SYMTAB, s),
            (DT_VERNEED, x),
            (DT_VERNEEDNUM, 2),
            (DT_NULL, 0),
            (DT_NEEDED, 1),  # after DT_NULL: ignored
        ]

    info = read_elf(write(tmp_path, dso(strtab, entries, bits=bits, little=little, extra=vn)))
    assert info.needed == ("libfoo.so.1", "libc.so.6", "libm.so.6")
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"), ("libc.so.6", "GLIBC_2.4"), ("libm.so.6", "GLIBC_2.29"))
    assert (info.bits, info.little_endian, info.dynamic, info.loads) == (bits, little, True, 1)


def test_many_needed_names_in_a_long_dynamic_section(tmp_path: Path) -> None:
    names = [f"libn{i}.so".encode() for i in range(300)]
    strtab = b"\0" + b"\0".join(names) + b"\0"
    offsets = [strtab.index(b"\0" + n + b"\0") + 1 for n in names]
    info = read_elf(write(tmp_path, dso(strtab, with_strsz(strtab, offsets))))
    assert info.needed == tuple(n.decode() for n in names)
    info32 = read_elf(write(tmp_path, dso(strtab, with_strsz(strtab, offsets), bits=32, little=False), "b.so"))
    assert info32.needed == info.needed


@pytest.mark.parametrize("bits", [32, 64])
def test_dynamic_entry_bound_edges(tmp_path: Path, bits: int) -> None:
    top = elf.MAX_DYNAMIC_ENTRIES
    # Exactly the bound, no DT_NULL: every entry read, accepted.
    filler = [(0x7000_0001, 0)] * (top - 3)
    exact = dso(b"\0libc.so.6\0", lambda s, _x: [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_STRSZ, 11), *filler], bits=bits)
    info = read_elf(write(tmp_path, exact))
    assert info.needed == ("libc.so.6",) and not info.dynamic
    # Far past the bound, but DT_NULL comes first: accepted.
    big = dso(b"\0libc.so.6\0", with_strsz(b"\0libc.so.6\0", [1]), bits=bits, dyn_filesz=1 << 20) + bytes(1 << 16)
    assert read_elf(write(tmp_path, big, "big.so")).needed == ("libc.so.6",)
    # Past the bound without DT_NULL: refused.
    over = dso(b"\0", lambda _s, _x: [(0x7000_0001, 0)] * (top + 1), bits=bits)
    assert error(tmp_path, over, "over.so") == f"too many ELF dynamic entries (more than {top})"


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_unterminated_small_dynamic_section(tmp_path: Path, bits: int, little: bool) -> None:
    # An odd number of entries, no DT_NULL: the last one counts.
    data = dso(
        b"\0libc.so.6\0",
        lambda s, _x: [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_SYMTAB, s), (0x7000_0001, 0), (DT_STRSZ, 11)],
        bits=bits,
        little=little,
    )
    info = read_elf(write(tmp_path, data))
    assert info.needed == ("libc.so.6",) and info.dynamic


def test_empty_dynamic_section(tmp_path: Path) -> None:
    data = dso(b"\0", lambda _s, _x: [], dyn_filesz=0)
    info = read_elf(write(tmp_path, data))
    assert (info.needed, info.version_needs, info.dynamic, info.loads) == ((), (), False, 1)


def test_string_table_entries_missing(tmp_path: Path) -> None:
    no_strsz = dso(b"\0libc.so.6\0", lambda s, _x: [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_NULL, 0)])
    assert error(tmp_path, no_strsz) == "malformed ELF dynamic section"
    no_strtab = dso(b"\0libc.so.6\0", lambda _s, _x: [(DT_NEEDED, 1), (DT_STRSZ, 11), (DT_NULL, 0)])
    assert error(tmp_path, no_strtab, "b.so") == "malformed ELF dynamic section"
    only_verneednum = dso(b"\0", lambda _s, _x: [(DT_VERNEEDNUM, 1), (DT_SYMTAB, 0), (DT_NULL, 0)])
    assert error(tmp_path, only_verneednum, "c.so") == "malformed ELF dynamic section"
    # Neither names nor version needs: nothing to look up, and no string table.
    bare = read_elf(write(tmp_path, dso(b"\0", lambda s, _x: [(DT_SYMTAB, s), (DT_NULL, 0)]), "d.so"))
    assert (bare.needed, bare.dynamic) == ((), False)


def test_verneed_entries_alone(tmp_path: Path) -> None:
    # DT_VERNEEDNUM without DT_VERNEED, and DT_VERNEED with a count of 0: no version needs.
    strtab = b"\0libc.so.6\0"
    for i, extra in enumerate([[(DT_VERNEEDNUM, 1)], [(DT_VERNEED, 0xDEAD), (DT_VERNEEDNUM, 0)]]):
        data = dso(strtab, lambda s, _x, extra=extra: [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_STRSZ, 11), *extra])
        info = read_elf(write(tmp_path, data, f"{i}.so"))
        assert info.needed == ("libc.so.6",) and info.version_needs == ()


def test_address_mapping_edges(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0"
    ehsize, phsize = sizes(64)
    start = ehsize + 3 * phsize
    dynamic = dyn(64, True, [(DT_NEEDED, 1), (DT_STRTAB, 0x900000), (DT_STRSZ, 11), (DT_SYMTAB, 1), (DT_NULL, 0)])
    total = start + len(dynamic) + len(strtab)

    def build(load2_vaddr: int) -> bytes:
        data = header(phnum=3) + phdr(64, True, PT_LOAD, 0, BASE, start + len(dynamic))
        # The string table is the second PT_LOAD, at a file offset unlike its address.
        data += phdr(64, True, PT_LOAD, start + len(dynamic), load2_vaddr, len(strtab))
        data += phdr(64, True, PT_DYNAMIC, start, BASE + start, len(dynamic))
        data += dynamic + strtab
        assert len(data) == total
        return data

    info = read_elf(write(tmp_path, build(0x900000)))  # DT_STRTAB is the segment's first byte
    assert info.needed == ("libc.so.6",) and info.loads == 2
    # DT_STRTAB one past the end of every PT_LOAD: not mapped.
    assert error(tmp_path, build(0x900000 - len(strtab)), "p.so") == "malformed ELF dynamic section"


def test_string_table_ends_the_file(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0"
    info = read_elf(write(tmp_path, dso(strtab, with_strsz(strtab, [1]), strtab_last=True)))
    assert info.needed == ("libc.so.6",)

    # One byte more than the file holds.
    def longer(s: int, x: int) -> list[tuple[int, int]]:
        return [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_STRSZ, len(strtab) + 1), (DT_NULL, 0)]

    assert error(tmp_path, dso(strtab, longer, strtab_last=True), "l.so") == "truncated ELF file"


def test_verneed_file_count_bound(tmp_path: Path) -> None:
    top = elf.MAX_VERNEED_FILES
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    blob = verneed_blob([(1, [11])] * top)
    info = read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=blob, verneednum=top)))
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"),) * top
    over = custom_elf(strtab, [1], verneed=blob, verneednum=top + 1)
    assert error(tmp_path, over, "o.so") == f"too many ELF version-need entries ({top + 1} > {top})"


def test_version_need_count_bound(tmp_path: Path) -> None:
    top = elf.MAX_VERSION_NEEDS
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    blob = verneed_blob([(1, [11] * (top // 2)), (1, [11] * (top // 2))])
    info = read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=blob, verneednum=2)))
    assert len(info.version_needs) == top
    over = verneed_blob([(1, [11] * (top // 2)), (1, [11] * (top // 2 + 1))])
    data = custom_elf(strtab, [1], verneed=over, verneednum=2)
    assert error(tmp_path, data, "o.so") == f"too many ELF version needs (more than {top})"


def test_needed_count_message(tmp_path: Path) -> None:
    data = custom_elf(b"\0libc.so.6\0", [1] * (elf.MAX_NEEDED + 1))
    assert error(tmp_path, data) == f"too many DT_NEEDED entries (more than {elf.MAX_NEEDED})"


# --------------------------------------------------------------------------
# Verneed chains: counts, stops, offsets, loops
# --------------------------------------------------------------------------


def test_verneed_chain_shapes(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0GLIBC_2.17\0libm.so.6\0GLIBC_2.29\0"
    aux = struct.pack("<IHHII", 1, 0, 2, 11, 0)
    # A gap between the Verneed entry and its first Vernaux (vn_aux = 32).
    gap = struct.pack("<HHIII", 1, 1, 1, 32, 0) + bytes(16) + aux
    assert read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=gap, verneednum=1))).version_needs == (
        ("libc.so.6", "GLIBC_2.17"),
    )
    # vn_cnt = 0: the entry names no version; the chain goes on.
    empty = struct.pack("<HHIII", 1, 0, 1, 0, 16) + struct.pack("<HHIII", 1, 1, 22, 16, 0)
    empty += struct.pack("<IHHII", 1, 0, 2, 32, 0)
    info = read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=empty, verneednum=2), "e.so"))
    assert info.version_needs == (("libm.so.6", "GLIBC_2.29"),)
    # vn_next = 0 ends the chain before DT_VERNEEDNUM entries; vna_next = 0 ends the list before vn_cnt.
    short = struct.pack("<HHIII", 1, 3, 1, 16, 0) + aux + struct.pack("<HHIII", 1, 1, 22, 16, 0) + aux
    info = read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=short, verneednum=2), "s.so"))
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"),)
    # vn_cnt is unsigned: 0xFFFF entries announced, the list ends at vna_next = 0.
    wide = struct.pack("<HHIII", 1, 0xFFFF, 1, 16, 0) + aux
    info = read_elf(write(tmp_path, custom_elf(strtab, [1], verneed=wide, verneednum=1), "w.so"))
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"),)
    # Name offsets are unsigned: 0xFFFFFFFF is past the string table.
    bad_file = struct.pack("<HHIII", 1, 1, 0xFFFF_FFFF, 16, 0) + aux
    assert error(tmp_path, custom_elf(strtab, [1], verneed=bad_file, verneednum=1), "f.so") == (
        "malformed ELF string table"
    )
    bad_name = struct.pack("<HHIII", 1, 1, 1, 16, 0) + struct.pack("<IHHII", 1, 0, 2, 0xFFFF_FFFF, 0)
    assert error(tmp_path, custom_elf(strtab, [1], verneed=bad_name, verneednum=1), "n.so") == (
        "malformed ELF string table"
    )


def test_verneed_loops_messages(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    loops = "malformed ELF version needs (the chain loops)"
    itself = struct.pack("<HHIII", 1, 3, 1, 0, 0)  # the first Vernaux is the Verneed entry
    assert error(tmp_path, custom_elf(strtab, [1], verneed=itself, verneednum=1)) == loops
    # The next Verneed entry is the previous entry's Vernaux.
    into_aux = struct.pack("<HHIII", 1, 1, 1, 16, 16) + struct.pack("<IHHII", 1, 0, 2, 11, 0)
    assert error(tmp_path, custom_elf(strtab, [1], verneed=into_aux, verneednum=2), "a.so") == loops
    # A Vernaux list that comes back to itself (vna_next wraps to an earlier entry is impossible; reuse).
    shared = struct.pack("<HHIII", 1, 1, 1, 32, 16) + struct.pack("<HHIII", 1, 1, 1, 16, 0)
    shared += struct.pack("<IHHII", 0x1234, 0, 2, 11, 0)
    assert error(tmp_path, custom_elf(strtab, [1], verneed=shared, verneednum=2), "s.so") == loops


# --------------------------------------------------------------------------
# The string table: indexes, terminators, the length and data budgets
# --------------------------------------------------------------------------


def test_string_indexes(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0"
    # Index 0 is the empty name; an index inside a name is its tail.
    assert read_elf(write(tmp_path, custom_elf(strtab, [0, 6]))).needed == ("", "so.6")
    # The index equal to the table size is past it.
    assert error(tmp_path, custom_elf(strtab, [len(strtab)]), "p.so") == "malformed ELF string table"
    assert error(tmp_path, custom_elf(strtab, [1 << 40]), "q.so") == "malformed ELF string table"


def test_string_index_past_the_table_32_bit(tmp_path: Path) -> None:
    data = make_elf(bits=32, needed=("libc.so.6",))
    at = data.index(struct.pack("<iI", DT_NEEDED, 1))
    data = data[:at] + struct.pack("<iI", DT_NEEDED, 0xFFFF_FFFF) + data[at + 8 :]
    assert error(tmp_path, data) == "malformed ELF string table"
    data64 = custom_elf(b"\0libc.so.6\0", [(1 << 64) - 1])
    assert error(tmp_path, data64, "b.so") == "malformed ELF string table"


def test_string_terminators(tmp_path: Path) -> None:
    top = elf.MAX_STRING
    not_terminated = "malformed ELF string table (a name is not terminated)"
    assert error(tmp_path, custom_elf(b"\0libc.so.6", [1])) == not_terminated
    # Exactly MAX_STRING bytes left and no NUL: not terminated, not too long.
    assert error(tmp_path, custom_elf(b"\0" + b"a" * top, [1]), "a.so") == not_terminated
    assert error(tmp_path, custom_elf(b"\0" + b"a" * (top + 1), [1]), "b.so") == f"ELF name longer than {top} bytes"
    # A short unterminated tail of a large table.
    tail = b"\0" + b"a" * 5000 + b"\0tail"
    assert error(tmp_path, custom_elf(tail, [5002]), "c.so") == not_terminated
    # Not UTF-8: replaced.
    assert read_elf(write(tmp_path, custom_elf(b"\0lib\xffc.so\0", [1]), "d.so")).needed == ("lib\ufffdc.so",)


def test_name_data_budget_edges(tmp_path: Path) -> None:
    budget = elf.MAX_STRING_DATA
    names = [bytes([65 + i]) * elf.MAX_STRING for i in range(budget // elf.MAX_STRING)]
    strtab = b"\0" + b"\0".join(names) + b"\0"
    offsets = [1 + i * (elf.MAX_STRING + 1) for i in range(len(names))]
    info = read_elf(write(tmp_path, custom_elf(strtab, offsets)))  # exactly the budget
    assert sum(map(len, info.needed)) == budget
    over = custom_elf(strtab + b"z\0", [*offsets, len(strtab)])
    assert error(tmp_path, over, "o.so") == f"more than {budget} bytes of ELF names"
    # The same name again costs nothing.
    same = custom_elf(b"\0" + b"n" * elf.MAX_STRING + b"\0", [1] * 100)
    assert read_elf(write(tmp_path, same, "s.so")).needed == ("n" * elf.MAX_STRING,) * 100


# --------------------------------------------------------------------------
# Large string tables: one bounded window per name, same facts
# --------------------------------------------------------------------------


def parse_counting(tmp_path: Path, data: bytes, name: str = "w.so") -> tuple[str, int, int]:
    """(outcome, reads, bytes read) of one parse."""
    path = write(tmp_path, data, name)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = elf._Reader(fd, len(data))
        try:
            info = elf._parse(reader)
            result = f"parsed {info.needed!r} {info.version_needs!r}"
        except ElfError as exc:
            result = str(exc)
        return result, reader.reads, reader.bytes_read
    finally:
        os.close(fd)


def test_small_table_is_read_once(tmp_path: Path) -> None:
    names = [f"lib{i}.so".encode() for i in range(20)]
    strtab = b"\0" + b"\0".join(names) + b"\0"
    offsets = [strtab.index(b"\0" + n + b"\0") + 1 for n in names]
    one = parse_counting(tmp_path, custom_elf(strtab, offsets[:1]), "one.so")
    many = parse_counting(tmp_path, custom_elf(strtab, offsets), "many.so")
    assert many[0].startswith("parsed ('lib0.so', 'lib1.so'")
    assert many[1] == one[1]  # the names cost no extra reads
    # A table of exactly _WHOLE_TABLE bytes is still read once.
    big = strtab + bytes(elf._WHOLE_TABLE - len(strtab))
    one = parse_counting(tmp_path, custom_elf(big, offsets[:1]), "b1.so")
    many = parse_counting(tmp_path, custom_elf(big, offsets), "b2.so")
    assert many[0].startswith("parsed ('lib0.so', 'lib1.so'") and many[1] == one[1]


def test_large_table_is_read_by_windows(tmp_path: Path) -> None:
    top = elf.MAX_STRING
    head = b"\0libc.so.6\0libm.so.6\0" + b"a" * top + b"\0"
    body = head + bytes(elf._WHOLE_TABLE + 100 - len(head))
    tail = b"lib\xfftail.so\0" + b"b" * (top + 1) + b"\0" + b"c" * top + b"\0" + b"unterminated"
    strtab = body + tail
    t = len(body)
    offsets = [1, 11, 21, 21, 0, t, t + 4]
    result, _reads, bytes_read = parse_counting(tmp_path, custom_elf(strtab, offsets))
    expected = ("libc.so.6", "libm.so.6", "a" * top, "a" * top, "", "lib\ufffdtail.so", "tail.so")
    assert result == f"parsed {expected!r} ()"
    assert bytes_read < 8 * (top + 1) + 4096  # windows, never the 1 MiB table
    long_at = t + len(b"lib\xfftail.so\0")
    assert parse_counting(tmp_path, custom_elf(strtab, [long_at]), "l.so")[0] == f"ELF name longer than {top} bytes"
    fits_at = long_at + top + 2
    assert parse_counting(tmp_path, custom_elf(strtab, [fits_at]), "f.so")[0] == f"parsed {('c' * top,)!r} ()"
    end_at = len(strtab) - len(b"unterminated")
    not_terminated = "malformed ELF string table (a name is not terminated)"
    assert parse_counting(tmp_path, custom_elf(strtab, [end_at]), "u.so")[0] == not_terminated
    assert parse_counting(tmp_path, custom_elf(strtab, [len(strtab)]), "p.so")[0] == "malformed ELF string table"


# --------------------------------------------------------------------------
# Unsigned fields: big machine numbers, counts and sizes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_unsigned_header_fields(tmp_path: Path, bits: int, little: bool) -> None:
    alpha = read_elf(write(tmp_path, header(bits, little, machine=0x9026, e_type=0xFE00)))
    assert (alpha.machine, alpha.machine_name, alpha.elf_type) == (0x9026, "alpha", 0xFE00)
    many = header(bits, little, phnum=0xFFFF)
    assert error(tmp_path, many, "m.so") == f"too many ELF program headers (65535 > {elf.MAX_PROGRAM_HEADERS})"


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_interpreter_segment_larger_than_the_file(tmp_path: Path, bits: int, little: bool) -> None:
    # p_filesz says "huge": only MAX_STRING + 1 bytes are read, and the file holds exactly those.
    ehsize, phsize = sizes(bits)
    start = ehsize + 2 * phsize
    name = b"/lib/ld-musl-x86_64.so.1\0"
    tail = name + b"x" * (elf.MAX_STRING + 1 - len(name))
    huge = (1 << bits) - 1
    data = header(bits, little, phnum=2) + phdr(bits, little, PT_LOAD, 0, BASE, start + len(tail))
    data += phdr(bits, little, PT_INTERP, start, BASE + start, huge) + tail
    assert read_elf(write(tmp_path, data)).interpreter == "/lib/ld-musl-x86_64.so.1"
    short = data[:-1]  # one byte fewer than MAX_STRING + 1 after p_offset
    assert error(tmp_path, short, "s.so") == "truncated ELF file"


def test_long_name_followed_by_a_terminator(tmp_path: Path) -> None:
    top = elf.MAX_STRING
    data = custom_elf(b"\0" + b"a" * (top + 1) + b"\0libc.so.6\0", [1])
    assert error(tmp_path, data) == f"ELF name longer than {top} bytes"


def test_string_table_size_past_the_file(tmp_path: Path) -> None:
    # Every name window would still fit in the file: only DT_STRSZ is wrong.
    strtab = b"\0libc.so.6\0" + bytes(2 * elf.MAX_STRING)

    def entries(s: int, _x: int) -> list[tuple[int, int]]:
        return [(DT_NEEDED, 1), (DT_STRTAB, s), (DT_STRSZ, 1 << 40), (DT_NULL, 0)]

    assert error(tmp_path, dso(strtab, entries)) == "truncated ELF file"


def test_relative_path_with_dir_fd(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, make_elf(needed=("libc.so.6",)), "inside.so")
    fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_elf("inside.so", dir_fd=fd).needed == ("libc.so.6",)
        assert read_elf("inside.so", dir_fd=fd, follow_symlinks=False).needed == ("libc.so.6",)
    finally:
        os.close(fd)
