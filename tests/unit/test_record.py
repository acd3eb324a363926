"""RECORD parsing and safe updates (``soabi_shim.record``)."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from soabi_shim.errors import RecordError, SoabiShimError
from soabi_shim.record import TMP_PREFIX, append_rows, clean_stale_temps, parse_record, read_record, remove_rows

ORIGINAL = (
    b"pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
    b"pkg/_ext.cpython-311-x86_64-linux-musl.so,sha256=abc,12345\n"
    b"pkg-1.0.dist-info/METADATA,sha256=def,99\n"
    b"pkg-1.0.dist-info/RECORD,,\n"
)
ORIGINAL_ROWS = [
    ("pkg/__init__.py", "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", "0"),
    ("pkg/_ext.cpython-311-x86_64-linux-musl.so", "sha256=abc", "12345"),
    ("pkg-1.0.dist-info/METADATA", "sha256=def", "99"),
    ("pkg-1.0.dist-info/RECORD", "", ""),
]
ALIAS = "pkg/_ext.cpython-311-x86_64-linux-gnu.so"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def make_record(tmp_path: Path, data: bytes = ORIGINAL, mode: int = 0o644) -> str:
    dist_info = tmp_path / "pkg-1.0.dist-info"
    dist_info.mkdir(exist_ok=True)
    record = dist_info / "RECORD"
    record.write_bytes(data)
    os.chmod(record, mode)
    return str(record)


def serialize(rows: list[tuple[str, str, str]], lineterminator: str = "\n") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def temps_in(record: str) -> list[str]:
    """Temporary files beside RECORD (in ``*.dist-info``) or in the site
    directory above it, where the package puts its temporary RECORD."""
    dist_info = os.path.dirname(os.path.abspath(record))
    found = []
    for directory in (dist_info, os.path.dirname(dist_info)):
        found += [n for n in os.listdir(directory) if n.startswith(TMP_PREFIX) or n.endswith(".tmp")]
    return found


def listing(record: str) -> dict[str, list[str]]:
    dist_info = os.path.dirname(os.path.abspath(record))
    site = os.path.dirname(dist_info)
    return {d: sorted(os.listdir(d)) for d in (dist_info, site)}


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------
# parse_record
# --------------------------------------------------------------------------


def test_parse_plain() -> None:
    assert parse_record(ORIGINAL) == ORIGINAL_ROWS


def test_parse_empty() -> None:
    assert parse_record(b"") == []


def test_parse_crlf_and_no_final_newline() -> None:
    assert parse_record(ORIGINAL.replace(b"\n", b"\r\n")) == ORIGINAL_ROWS
    assert parse_record(ORIGINAL.rstrip(b"\n")) == ORIGINAL_ROWS
    assert parse_record(ORIGINAL.replace(b"\n", b"\r")) == ORIGINAL_ROWS


def test_parse_quoted_fields() -> None:
    data = b'"a,b.py",sha256=x,1\n"say ""hi"".txt",,\n"multi\nline",,\n\xc3\xa9t\xc3\xa9.py,,\n'
    assert parse_record(data) == [
        ("a,b.py", "sha256=x", "1"),
        ('say "hi".txt', "", ""),
        ("multi\nline", "", ""),
        ("\u00e9t\u00e9.py", "", ""),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a,b,c\n\nd,e,f\n", "blank line"),
        (b"\n", "blank line"),
        (b"a,b,c\r\n\r\n", "blank line"),
        (b"a,b,c\nonefield\n", "1 fields"),
        (b"a,b,c\nx,y\n", "2 fields"),
        (b"a,b,c\nw,x,y,z\n", "4 fields"),
        (b"a,b,c\n,sha256=x,1\n", "empty path"),
        (b",,\n", "empty path"),
        (b"a,b,c\n\xff\xfe,,\n", "UTF-8"),
        (b"caf\xe9.py,,\n", "UTF-8"),
        (b"a,b,c\nx\x00y,,\n", "NUL"),
        (b"\x00", "NUL"),
        (b'"' + b"x" * 200_000 + b'",,\n', "CSV"),  # beyond csv's field size limit
    ],
)
def test_parse_rejects(data: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_record(data)


def test_read_record_missing(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="cannot read"):
        read_record(str(tmp_path / "RECORD"))
    with pytest.raises(RecordError, match="cannot read"):
        read_record(str(tmp_path))


def test_record_error_is_ours() -> None:
    assert issubclass(RecordError, SoabiShimError)


# --------------------------------------------------------------------------
# append_rows
# --------------------------------------------------------------------------


def test_append_keeps_original_bytes_as_prefix(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    assert append_rows(record, [ALIAS]) == [ALIAS]
    data = Path(record).read_bytes()
    assert data == ORIGINAL + ALIAS.encode() + b",,\n"
    assert read_record(record) == [*ORIGINAL_ROWS, (ALIAS, "", "")]


@pytest.mark.parametrize(
    "original",
    [
        ORIGINAL.rstrip(b"\n"),  # no final newline
        ORIGINAL.replace(b"\n", b"\r\n"),  # pip writes CRLF
        ORIGINAL.replace(b"\n", b"\r\n").rstrip(b"\r\n"),
        b'"quoted,path.py",sha256=q,3\n' + ORIGINAL,
        b"",
    ],
)
def test_append_various_originals(tmp_path: Path, original: bytes) -> None:
    record = make_record(tmp_path, original)
    before = parse_record(original)
    assert append_rows(record, [ALIAS, "pkg/b.so"]) == [ALIAS, "pkg/b.so"]
    data = Path(record).read_bytes()
    assert data.startswith(original)
    tail = data[len(original) :]
    if original and not original.endswith((b"\n", b"\r")):
        assert tail.startswith(b"\n")
        tail = tail[1:]
    assert tail == f"{ALIAS},,\npkg/b.so,,\n".encode()
    assert read_record(record) == [*before, (ALIAS, "", ""), ("pkg/b.so", "", "")]


def test_append_is_idempotent(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    append_rows(record, [ALIAS])
    once = Path(record).read_bytes()
    ino = os.stat(record).st_ino
    assert append_rows(record, [ALIAS]) == []
    assert append_rows(record, [ALIAS, ALIAS]) == []
    assert Path(record).read_bytes() == once
    assert os.stat(record).st_ino == ino  # nothing to add: not rewritten


def test_append_skips_paths_already_recorded_with_hash(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    assert append_rows(record, ["pkg/__init__.py", ALIAS, ALIAS, "pkg/b.so", ALIAS]) == [ALIAS, "pkg/b.so"]
    paths = [r[0] for r in read_record(record)]
    assert len(paths) == len(set(paths))


def test_append_quotes_awkward_paths(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    odd = ["a,b.so", 'q"uote.so', "new\nline.so", "sp ace.so", "\u00fcml\u00e4ut.so", "\u65e5\u672c.so"]
    assert append_rows(record, odd) == odd
    assert read_record(record) == ORIGINAL_ROWS + [(p, "", "") for p in odd]


def test_append_path_with_carriage_return(tmp_path: Path) -> None:
    # BUG: csv.writer(lineterminator="\n") does not quote a field holding
    # "\r", so the serialized row splits in two and append_rows refuses.
    record = make_record(tmp_path)
    assert append_rows(record, ["cr\rpath.so"]) == ["cr\rpath.so"]
    assert read_record(record) == [*ORIGINAL_ROWS, ("cr\rpath.so", "", "")]


def test_append_undecodable_path_raises_record_error(tmp_path: Path) -> None:
    # os.listdir() gives surrogate escapes for non-UTF-8 file names; such a
    # path cannot be written to a UTF-8 RECORD.  BUG: a UnicodeEncodeError
    # escapes instead of RecordError.
    record = make_record(tmp_path)
    name = os.fsdecode(b"\xff.cpython-311-x86_64-linux-gnu.so")
    with pytest.raises(RecordError):
        append_rows(record, [name])
    assert Path(record).read_bytes() == ORIGINAL
    assert temps_in(record) == []


@pytest.mark.parametrize(
    "broken",
    [
        ORIGINAL + b"\n",  # blank line
        ORIGINAL + b"onefield\n",
        ORIGINAL + b"a,b,c,d\n",
        ORIGINAL + b"\xff,,\n",
        ORIGINAL + b"x\x00,,\n",
        ORIGINAL + b",,\n",
    ],
)
def test_broken_record_is_never_rewritten(tmp_path: Path, broken: bytes) -> None:
    record = make_record(tmp_path, broken)
    ino = os.stat(record).st_ino
    with pytest.raises(RecordError):
        append_rows(record, [ALIAS])
    with pytest.raises(RecordError):
        remove_rows(record, ["pkg/__init__.py"])
    assert Path(record).read_bytes() == broken
    assert os.stat(record).st_ino == ino
    assert temps_in(record) == []


def test_missing_record_raises_record_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError):
        append_rows(str(tmp_path / "RECORD"), [ALIAS])
    with pytest.raises(RecordError):
        remove_rows(str(tmp_path / "RECORD"), [ALIAS])


def test_symlinked_record_is_refused(tmp_path: Path) -> None:
    real = make_record(tmp_path)
    link = tmp_path / "RECORD-link"
    link.symlink_to(real)
    with pytest.raises(RecordError):
        append_rows(str(link), [ALIAS])
    assert Path(real).read_bytes() == ORIGINAL
    assert link.is_symlink()


def test_no_temp_files_left(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    before = listing(record)
    append_rows(record, [ALIAS])
    remove_rows(record, [ALIAS])
    append_rows(record, ["pkg/c.so"])
    assert listing(record) == before
    assert temps_in(record) == []


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    gone = dead_pid()
    stale = [f"{TMP_PREFIX}{gone}.deadbeef.tmp", f"{TMP_PREFIX}{gone}.00000000.tmp"]
    live = [f"{TMP_PREFIX}{os.getpid()}.cafebabe.tmp"]  # a writer still running
    unrelated = ["METADATA", "RECORD.bak", ".RECORD.other.tmp", f"{TMP_PREFIX}{gone}.keep.txt", f"{TMP_PREFIX}x.1.tmp"]
    for name in stale + live + unrelated:
        (site / name).write_bytes(b"half-written")
    assert sorted(clean_stale_temps(str(site))) == sorted(stale)
    left = set(os.listdir(site))
    assert not left & set(stale)
    assert set(live + unrelated) <= left
    assert clean_stale_temps(str(site)) == []
    assert clean_stale_temps(str(tmp_path / "absent")) == []


def test_stale_temp_files_do_not_disturb_updates(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    stale = tmp_path / f"{TMP_PREFIX}{dead_pid()}.deadbeef.tmp"
    stale.write_bytes(b"half")
    assert append_rows(record, [ALIAS]) == [ALIAS]
    assert read_record(record) == [*ORIGINAL_ROWS, (ALIAS, "", "")]


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640, 0o444])
def test_mode_preserved(tmp_path: Path, mode: int) -> None:
    record = make_record(tmp_path, mode=mode)
    append_rows(record, [ALIAS])
    assert stat.S_IMODE(os.stat(record).st_mode) == mode
    remove_rows(record, [ALIAS])
    assert stat.S_IMODE(os.stat(record).st_mode) == mode


@pytest.mark.parametrize("mode", [0o664, 0o666])
def test_mode_preserved_despite_umask(tmp_path: Path, mode: int) -> None:
    # BUG: the temporary RECORD is created with os.open(..., mode), which the
    # process umask narrows: a group-writable RECORD (umask 002 venvs,
    # shared installs) comes back 0o644.
    record = make_record(tmp_path, mode=mode)
    old = os.umask(0o022)
    try:
        append_rows(record, [ALIAS])
    finally:
        os.umask(old)
    assert oct(stat.S_IMODE(os.stat(record).st_mode)) == oct(mode)


def test_inode_replaced_hardlink_untouched(tmp_path: Path) -> None:
    # uv hardlinks installed files from its cache: the cache's copy must not
    # change when the installed RECORD is updated.
    record = make_record(tmp_path)
    cache_copy = tmp_path / "cache-RECORD"
    os.link(record, cache_copy)
    ino = os.stat(record).st_ino
    append_rows(record, [ALIAS])
    assert os.stat(record).st_ino != ino
    assert cache_copy.read_bytes() == ORIGINAL
    assert os.stat(cache_copy).st_nlink == 1
    assert Path(record).read_bytes().startswith(ORIGINAL)
    # The same for removal.
    os.link(record, tmp_path / "cache-2")
    remove_rows(record, [ALIAS])
    assert (tmp_path / "cache-2").read_bytes() == ORIGINAL + ALIAS.encode() + b",,\n"
    assert Path(record).read_bytes() == ORIGINAL


def test_large_record(tmp_path: Path) -> None:
    rows = [(f"pkg/sub{i // 1000}/module_{i}.py", f"sha256={i:043d}", str(i)) for i in range(100_000)]
    original = serialize(rows)
    record = make_record(tmp_path, original)
    new = [f"pkg/sub{i}/_ext.cpython-311-x86_64-linux-gnu.so" for i in range(50)]
    assert append_rows(record, [*new, rows[5][0], rows[99_999][0]]) == new
    data = Path(record).read_bytes()
    assert data.startswith(original)
    got = read_record(record)
    assert len(got) == 100_050
    assert got[:100_000] == rows
    assert got[100_000:] == [(p, "", "") for p in new]
    assert remove_rows(record, new[:10]) == new[:10]
    assert len(read_record(record)) == 100_040


# --------------------------------------------------------------------------
# remove_rows
# --------------------------------------------------------------------------


def test_remove_rows(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    append_rows(record, [ALIAS, "pkg/b.so"])
    assert remove_rows(record, [ALIAS, "not/there.so"]) == [ALIAS]
    assert read_record(record) == [*ORIGINAL_ROWS, ("pkg/b.so", "", "")]
    assert remove_rows(record, ["pkg/b.so"]) == ["pkg/b.so"]
    assert Path(record).read_bytes() == ORIGINAL


def test_remove_nothing_leaves_bytes_and_inode(tmp_path: Path) -> None:
    original = ORIGINAL.replace(b"\n", b"\r\n")
    record = make_record(tmp_path, original)
    ino = os.stat(record).st_ino
    assert remove_rows(record, ["absent.so"]) == []
    assert Path(record).read_bytes() == original
    assert os.stat(record).st_ino == ino


def test_remove_keeps_quoted_rows(tmp_path: Path) -> None:
    rows = [("a,b.py", "sha256=x", "1"), ('q"q.py', "", ""), ("nl\nnl.py", "", ""), ("x.so", "", "")]
    record = make_record(tmp_path, serialize(rows, "\r\n"))
    assert remove_rows(record, ["x.so"]) == ["x.so"]
    assert read_record(record) == rows[:3]


# --------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------

N_PROCS = 24
SHARED = [f"shared/_s{i}.cpython-311-x86_64-linux-gnu.so" for i in range(6)]


def _worker(record: str, index: int, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        start.wait(30)
        added: list[str] = []
        for round_ in range(4):
            mine = [f"w{index}/_m{round_}_{k}.cpython-311-x86_64-linux-gnu.so" for k in range(3)]
            # Every round also offers the shared rows, in a process-dependent order.
            shared = SHARED[index % len(SHARED) :] + SHARED[: index % len(SHARED)]
            added += append_rows(record, [*mine, *shared])
        out.put((index, added, None))
    except BaseException as exc:  # report, never hang the parent
        out.put((index, [], repr(exc)))


def test_concurrent_appends(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(record, i, start, out)) for i in range(N_PROCS)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    errors = [(i, err) for i, _, err in results if err]
    assert errors == []

    rows = read_record(record)  # parses
    paths = [r[0] for r in rows]
    assert Path(record).read_bytes().startswith(ORIGINAL)
    assert rows[: len(ORIGINAL_ROWS)] == ORIGINAL_ROWS
    assert len(paths) == len(set(paths)), "duplicate rows"
    distinct = {
        f"w{i}/_m{r}_{k}.cpython-311-x86_64-linux-gnu.so" for i in range(N_PROCS) for r in range(4) for k in range(3)
    }
    assert distinct <= set(paths), "lost rows"
    assert set(paths) == {r[0] for r in ORIGINAL_ROWS} | distinct | set(SHARED)
    # Each row was reported added by exactly one process.
    reported = [p for _, added, _ in results for p in added]
    assert sorted(reported) == sorted(distinct | set(SHARED))
    assert temps_in(record) == []
