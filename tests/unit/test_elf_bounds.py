"""Bounded ELF parsing (issue 11): hostile files are refused with a reason,
quickly and in bounded memory; FIFOs and other non-regular files are never
read; a header followed by zeros is not a shared object."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from soabi_shim import elf
from soabi_shim.elf import read_elf, read_elf_fd, refusal
from soabi_shim.errors import ElfError
from tests.unit.test_elf import BASE, DT_NEEDED, DT_NULL, DT_STRSZ, DT_STRTAB, DT_VERNEED, DT_VERNEEDNUM, make_elf

ROOT = Path(__file__).resolve().parents[2]
DT_SYMTAB = 6
EHSIZE, PHSIZE = 64, 56


def custom_elf(
    strtab: bytes,
    needed: list[int],
    *,
    verneed: bytes = b"",
    verneednum: int = 0,
    symtab: bool = True,
    dyn_size_extra: int = 0,
) -> bytes:
    """x86_64 ET_DYN with one PT_LOAD (whole file) and PT_DYNAMIC; the
    string table, the Verneed blob and the dynamic entries are given raw."""
    cursor = EHSIZE + 2 * PHSIZE
    blob = bytearray(strtab)
    while (cursor + len(blob)) % 8:
        blob += b"\0"
    verneed_off = cursor + len(blob)
    blob += verneed
    while (cursor + len(blob)) % 8:
        blob += b"\0"
    dyn_off = cursor + len(blob)
    entries = [(DT_NEEDED, o) for o in needed]
    entries += [(DT_STRTAB, BASE + cursor), (DT_STRSZ, len(strtab))]
    if symtab:
        entries.append((DT_SYMTAB, BASE + cursor))
    if verneed:
        entries += [(DT_VERNEED, BASE + verneed_off), (DT_VERNEEDNUM, verneednum)]
    entries.append((DT_NULL, 0))
    dynamic = b"".join(struct.pack("<qQ", t, v) for t, v in entries)
    total = dyn_off + len(dynamic)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, total, total, 8)
    phdrs += struct.pack("<IIQQQQQQ", 2, 6, dyn_off, BASE + dyn_off, 0, len(dynamic) + dyn_size_extra, 0, 8)
    ident = b"\x7fELF\x02\x01\x01\x00" + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, EHSIZE, 0, 0, EHSIZE, PHSIZE, 2, 64, 0, 0)
    data = header + phdrs + bytes(blob) + dynamic
    assert len(data) == total
    return data


def verneed_blob(files: list[tuple[int, list[int]]], *, vn_aux: int = 16) -> bytes:
    """Verneed entries (file name offset, version name offsets), chained."""
    out = bytearray()
    for i, (file_off, names) in enumerate(files):
        last = i == len(files) - 1
        out += struct.pack("<HHIII", 1, len(names), file_off, vn_aux, 0 if last else 16 + 16 * len(names))
        for j, name_off in enumerate(names):
            out += struct.pack("<IHHII", 0x1234, 0, 2 + j, name_off, 0 if j == len(names) - 1 else 16)
    return bytes(out)


def write(tmp_path: Path, data: bytes, name: str = "obj.so") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def outcome(path: str) -> str:
    try:
        read_elf(path)
    except ElfError as exc:
        return str(exc)
    return "parsed"


# --------------------------------------------------------------------------
# The builder is right: a well-formed custom object parses
# --------------------------------------------------------------------------


def test_custom_builder_parses(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    data = custom_elf(strtab, [1], verneed=verneed_blob([(1, [11])]), verneednum=1)
    info = read_elf(write(tmp_path, data))
    assert info.needed == ("libc.so.6",)
    assert info.version_needs == (("libc.so.6", "GLIBC_2.17"),)
    assert info.dynamic and info.loads == 1
    assert refusal(info, None, "glibc") is None


# --------------------------------------------------------------------------
# Each bound, just inside and just past
# --------------------------------------------------------------------------


def test_needed_count_bound(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0"
    ok = custom_elf(strtab, [1] * elf.MAX_NEEDED)
    assert read_elf(write(tmp_path, ok)).needed == ("libc.so.6",) * elf.MAX_NEEDED
    bad = custom_elf(strtab, [1] * (elf.MAX_NEEDED + 1))
    assert "too many DT_NEEDED entries" in outcome(write(tmp_path, bad))


def test_long_name_is_refused(tmp_path: Path) -> None:
    fits = b"\0" + b"a" * elf.MAX_STRING + b"\0"
    assert read_elf(write(tmp_path, custom_elf(fits, [1]))).needed == ("a" * elf.MAX_STRING,)
    huge = b"\0" + b"a" * (elf.MAX_STRING + 1) + b"\0"
    assert f"longer than {elf.MAX_STRING} bytes" in outcome(write(tmp_path, custom_elf(huge, [1])))


def test_unterminated_name_is_refused(tmp_path: Path) -> None:
    assert "not terminated" in outcome(write(tmp_path, custom_elf(b"\0libc.so.6", [1])))


def test_name_data_budget(tmp_path: Path) -> None:
    # 400 names of 4000 bytes each at distinct offsets: 1.6 MB of names from a 20 KB file.
    name = b"x" * 4000
    strtab = b"\0" + name + b"\0"
    data = custom_elf(strtab, list(range(1, 401)))
    assert "bytes of ELF names" in outcome(write(tmp_path, data))


def test_program_header_bound(tmp_path: Path) -> None:
    data = bytearray(make_elf(needed=("libc.so.6",)))
    struct.pack_into("<H", data, 56, elf.MAX_PROGRAM_HEADERS + 1)  # e_phnum
    data += bytes(PHSIZE * (elf.MAX_PROGRAM_HEADERS + 1))  # headers present: only the count is wrong
    assert "too many ELF program headers" in outcome(write(tmp_path, bytes(data)))


def test_dynamic_entry_bound(tmp_path: Path) -> None:
    # A PT_DYNAMIC larger than the bound whose entries never reach DT_NULL.
    strtab = b"\0libc.so.6\0"
    n = elf.MAX_DYNAMIC_ENTRIES + 8
    cursor = EHSIZE + 2 * PHSIZE
    filler = struct.pack("<qQ", 0x7000_0001, 0) * n  # an unknown tag, never DT_NULL
    dyn_off = cursor + len(strtab) + (-(cursor + len(strtab)) % 8)
    body = strtab + bytes(dyn_off - cursor - len(strtab)) + filler
    total = cursor + len(body)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, total, total, 8)
    phdrs += struct.pack("<IIQQQQQQ", 2, 6, dyn_off, BASE + dyn_off, 0, len(filler), 0, 8)
    header = b"\x7fELF\x02\x01\x01\x00" + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, EHSIZE, 0, 0, EHSIZE, PHSIZE, 2, 64, 0, 0)
    assert "too many ELF dynamic entries" in outcome(write(tmp_path, header + phdrs + body))


def test_verneed_count_bounds(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    many = verneed_blob([(1, [11] * (elf.MAX_VERSION_NEEDS + 1))])
    assert "too many ELF version needs" in outcome(write(tmp_path, custom_elf(strtab, [1], verneed=many, verneednum=1)))
    files = verneed_blob([(1, [11])])
    data = custom_elf(strtab, [1], verneed=files, verneednum=elf.MAX_VERNEED_FILES + 1)
    assert "too many ELF version-need entries" in outcome(write(tmp_path, data))


def test_verneed_loop_is_refused(tmp_path: Path) -> None:
    strtab = b"\0libc.so.6\0GLIBC_2.17\0"
    # vn_aux = 0: the first Vernaux is the Verneed entry itself, read again.
    looping = struct.pack("<HHIII", 1, 3, 1, 0, 0)
    data = custom_elf(strtab, [1], verneed=looping, verneednum=1)
    assert "the chain loops" in outcome(write(tmp_path, data))
    # Two Verneed entries sharing one Vernaux list.
    shared = struct.pack("<HHIII", 1, 1, 1, 32, 16) + struct.pack("<HHIII", 1, 1, 1, 16, 0)
    shared += struct.pack("<IHHII", 0x1234, 0, 2, 11, 0)
    data = custom_elf(strtab, [1], verneed=shared, verneednum=2)
    assert "the chain loops" in outcome(write(tmp_path, data))


def test_string_table_past_the_end_is_truncated(tmp_path: Path) -> None:
    data = bytearray(custom_elf(b"\0libc.so.6\0" + bytes(5000), [1]))
    # DT_STRSZ says the table runs far past the end of the file (every name
    # window would still fit in the file).
    at = bytes(data).index(struct.pack("<qQ", DT_STRSZ, 5011))
    struct.pack_into("<qQ", data, at, DT_STRSZ, 1 << 40)
    assert outcome(write(tmp_path, bytes(data))) == "truncated ELF file"


# --------------------------------------------------------------------------
# Not a shared object: a header followed by zeros, no dynamic section
# --------------------------------------------------------------------------


def header_then_zeros(phnum: int) -> bytes:
    header = b"\x7fELF\x02\x01\x01\x00" + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, EHSIZE, 0, 0, EHSIZE, PHSIZE, phnum, 64, 0, 0)
    return header + bytes(4096)


@pytest.mark.parametrize("phnum", [0, 1, 12])
def test_header_followed_by_zeros_is_not_a_shared_object(tmp_path: Path, phnum: int) -> None:
    info = read_elf(write(tmp_path, header_then_zeros(phnum)))
    host = read_elf(os.path.realpath(sys.executable))
    reason = refusal(info, host if host.machine == 62 else None, "glibc")
    assert reason is not None and reason.startswith("not an ELF shared object"), reason


def test_empty_dynamic_section_is_not_a_shared_object(tmp_path: Path) -> None:
    # PT_LOAD and PT_DYNAMIC present, but the dynamic section is all zeros.
    data = bytearray(custom_elf(b"\0", []))
    dyn_off = struct.unpack_from("<Q", data, EHSIZE + PHSIZE + 8)[0]
    data[dyn_off:] = bytes(len(data) - dyn_off)
    info = read_elf(write(tmp_path, bytes(data)))
    assert not info.dynamic
    assert refusal(info, None, "glibc") == "not an ELF shared object (no dynamic section with a symbol table)"
    no_symtab = read_elf(write(tmp_path, custom_elf(b"\0libc.so.6\0", [1], symtab=False), "n.so"))
    assert refusal(no_symtab, None, "glibc") == "not an ELF shared object (no dynamic section with a symbol table)"


def test_no_load_segment_is_not_a_shared_object(tmp_path: Path) -> None:
    data = bytearray(custom_elf(b"\0libc.so.6\0", [1]))
    struct.pack_into("<I", data, EHSIZE, 0)  # PT_LOAD -> PT_NULL
    info = read_elf(write(tmp_path, bytes(data))) if outcome(write(tmp_path, bytes(data))) == "parsed" else None
    if info is not None:  # the string table cannot be found without PT_LOAD: refused either way
        assert refusal(info, None, "glibc") == "not an ELF shared object (no loadable segment)"
    else:
        assert "malformed ELF dynamic section" in outcome(write(tmp_path, bytes(data)))
    hdr = read_elf(write(tmp_path, header_then_zeros(0), "z.so"))
    hdr.dynamic = True  # only the missing PT_LOAD is left to refuse it
    assert refusal(hdr, None, "glibc") == "not an ELF shared object (no loadable segment)"


# --------------------------------------------------------------------------
# Only regular files; dir_fd, O_NOFOLLOW and an open descriptor
# --------------------------------------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "_speed.cpython-311-x86_64-linux-musl.so"
    os.mkfifo(fifo)
    code = f"from soabi_shim.elf import read_elf\ntry:\n read_elf({str(fifo)!r})\nexcept Exception as e:\n print(e)\n"
    # The timeout only stops a hung reader; the assertion is on the message.
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.stdout.strip() == "cannot read: not a regular file", out


def test_dir_fd_and_nofollow(tmp_path: Path) -> None:
    real = tmp_path / "real.so"
    real.write_bytes(custom_elf(b"\0libc.so.6\0", [1]))
    (tmp_path / "link.so").symlink_to("real.so")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_elf("real.so", dir_fd=fd).needed == ("libc.so.6",)
        assert read_elf("link.so", dir_fd=fd).needed == ("libc.so.6",)
        with pytest.raises(ElfError, match="cannot read"):
            read_elf("link.so", dir_fd=fd, follow_symlinks=False)
        assert read_elf("real.so", dir_fd=fd, follow_symlinks=False).needed == ("libc.so.6",)
    finally:
        os.close(fd)


def test_read_elf_fd_leaves_the_descriptor_open(tmp_path: Path) -> None:
    path = write(tmp_path, custom_elf(b"\0libc.so.6\0", [1]))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_elf_fd(fd).needed == ("libc.so.6",)
        assert stat.S_ISREG(os.fstat(fd).st_mode)  # still open
    finally:
        os.close(fd)
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ElfError, match="not a regular file"):
            read_elf_fd(dfd)
    finally:
        os.close(dfd)


def test_file_size_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, custom_elf(b"\0libc.so.6\0", [1]))
    monkeypatch.setattr(elf, "MAX_FILE_SIZE", 100)
    assert outcome(path).startswith("file too large")


# --------------------------------------------------------------------------
# The memory bomb of issue 11, under an address-space limit
# --------------------------------------------------------------------------

BOMB_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from types import SimpleNamespace
    from soabi_shim.elf import read_elf
    from soabi_shim.errors import ElfError
    from soabi_shim.plugins import get_plugin_host

    host = get_plugin_host(entry_points=False)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
    limit = vm + (256 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    path, site = sys.argv[1], sys.argv[2]
    try:
        read_elf(path)
    except ElfError as exc:
        print("read_elf:", exc)
    except MemoryError:
        print("read_elf: MemoryError")
    candidate = SimpleNamespace(path=path, site=site)
    facts = SimpleNamespace(elf=None, libc="glibc")
    print("check:", host.check(candidate, facts))
    """
)


def test_needed_bomb_is_refused_under_rlimit_as(tmp_path: Path) -> None:
    # ~2 MB: 65,000 DT_NEEDED entries naming one unterminated 1 MiB string.
    data = custom_elf(b"A" * (1 << 20), [0] * 65_000)
    so = tmp_path / "_speed.cpython-311-x86_64-linux-musl.so"
    so.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(so), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"read_elf: too many DT_NEEDED entries (more than {elf.MAX_NEEDED})", out.stdout
    assert lines[1] == f"check: too many DT_NEEDED entries (more than {elf.MAX_NEEDED})", out.stdout


# --------------------------------------------------------------------------
# Property: memory and work per input are bounded by the input's size
# --------------------------------------------------------------------------


def measure(data: bytes, path: str) -> tuple[str, int, int, int]:
    """(outcome, tracemalloc peak, number of reads, bytes read) of one parse."""
    with open(path, "wb") as f:
        f.write(data)
    fd = os.open(path, os.O_RDONLY)
    reader = elf._Reader(fd, len(data))
    tracemalloc.start()
    try:
        try:
            elf._parse(reader)
            result = "parsed"
        except ElfError as exc:
            result = str(exc)
        except struct.error:
            result = "struct.error"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.close(fd)
    return result, peak, reader.reads, reader.bytes_read


def assert_bounded(data: bytes, path: str) -> None:
    result, peak, reads, bytes_read = measure(data, path)
    size = len(data)
    assert peak <= 8 * size + (512 << 10), (result, peak, size)
    assert bytes_read <= 8 * size + (64 << 10), (result, bytes_read, size)
    max_reads = 8 + elf.MAX_NEEDED + 2 * (elf.MAX_VERSION_NEEDS + elf.MAX_VERNEED_FILES)
    assert reads <= max_reads, (result, reads)


def _structured() -> st.SearchStrategy[bytes]:
    names = st.lists(st.text(alphabet="abcl.so0123456789_", min_size=1, max_size=30), max_size=6)
    base = st.builds(
        lambda bits, little, needed, interp: make_elf(
            bits=bits,
            little=little,
            needed=tuple(needed),
            interp=interp,
            verneed=(("libc.so.6", ("GLIBC_2.17", "GLIBC_2.2.5")),),
        ),
        st.sampled_from([32, 64]),
        st.booleans(),
        names,
        st.one_of(st.none(), st.just("/lib/ld-musl-x86_64.so.1")),
    )

    def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for pos, value in edits:
            out[pos % len(out)] = value
        return bytes(out)

    edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8)
    return st.builds(mutate, base, edits)


BOMBS = [
    custom_elf(b"A" * 8000, [0] * 3000),  # many needed naming one unterminated string
    custom_elf(b"\0" + b"x" * 4000 + b"\0", list(range(1, 2000))),  # overlapping long names
    custom_elf(b"\0libc.so.6\0G\0", [1], verneed=verneed_blob([(1, [11] * 3000)]), verneednum=1),
]


@settings(deadline=None, database=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_structured(), st.binary(max_size=2048)))
@example(BOMBS[0])
@example(BOMBS[1])
@example(BOMBS[2])
@example(header_then_zeros(12))
def test_memory_and_work_bounded_by_size(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        assert_bounded(data, os.path.join(d, "x.so"))


def test_bombs_are_refused(tmp_path: Path) -> None:
    for i, data in enumerate(BOMBS):
        assert outcome(write(tmp_path, data, f"b{i}.so")) != "parsed", i


def test_builtin_check_refuses_header_and_zeros(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from soabi_shim import builtin

    path = write(tmp_path, header_then_zeros(4), "_speed.cpython-311-x86_64-linux-musl.so")
    verdict = builtin.check_elf(path, SimpleNamespace(elf=None, libc="glibc"))  # type: ignore[arg-type]
    assert verdict is not None and not verdict.ok
    assert verdict.reason == "not an ELF shared object (no loadable segment)"
    outside = tmp_path / "outside"
    outside.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    (site / "pkg").symlink_to(outside)
    candidate = SimpleNamespace(path=str(site / "pkg" / "x.so"), site=str(site))
    refused = builtin.check_location(candidate)  # type: ignore[arg-type]
    assert refused is not None and "outside the site directory" in refused.reason
    inside = SimpleNamespace(path=str(site / "x.so"), site=str(site))
    assert builtin.check_location(inside) is None  # type: ignore[arg-type]
