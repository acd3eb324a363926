"""record.py's update machinery on fake site directories in ``tmp_path``:
the ``renameat2`` loader (both its ``_ctypes`` fast path and its ``ctypes``
fallback), the exchange and check-then-replace swaps, installers replacing
RECORD in the middle of an update, the lock's retries and bounds, failures
half-way through, owners and temporary files.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import _ctypes
import ctypes  # imported first: the fallback stays importable while _ctypes is hidden
import errno
import fcntl
import os
import re
import signal
import stat
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from soabi_shim import record
from soabi_shim.errors import OutsideError, RecordError
from soabi_shim.record import (
    TMP_PREFIX,
    append_rows,
    append_rows_at,
    clean_stale_temps,
    load_record,
    parse_record,
    read_record,
    remove_rows,
)
from soabi_shim.sitefs import SiteDir

AT_FDCWD = -100
RENAME_EXCHANGE = 2
ORIGINAL = b"pkg/__init__.py,sha256=abc,0\npkg-1.0.dist-info/RECORD,,\n"
INSTALLED = ORIGINAL + b"pkg/new.py,sha256=new,7\n"  # what an installer writes meanwhile
ALIAS = "pkg/_ext.cpython-311-x86_64-linux-gnu.so"
ALIAS_ROW = ALIAS.encode() + b",,\n"
#: musl 1.2.5 (the e2e interpreters' libc) has no renameat2: soabi-shim then
#: swaps RECORD by check-then-replace, which the "replace" runs below cover.
LIBC_HAS_RENAMEAT2 = hasattr(ctypes.CDLL(None), "renameat2")
needs_renameat2 = pytest.mark.skipif(not LIBC_HAS_RENAMEAT2, reason="this libc has no renameat2")
SIGNATURE = ([("c_int", "i"), ("c_char_p", "z"), ("c_int", "i"), ("c_char_p", "z"), ("c_uint", "I")], ("c_int", "i"))


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No renameat2 loaded yet; whatever a test loads is forgotten after it."""
    monkeypatch.setattr(record, "_RENAMEAT2", None)
    monkeypatch.setattr(record, "_NO_RENAMEAT2", False)
    monkeypatch.setattr(record, "_GET_ERRNO", record._no_errno)


@pytest.fixture(params=["exchange", "replace"])
def swap(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with renameat2(RENAME_EXCHANGE), then as where the kernel has none."""
    monkeypatch.setattr(record, "_RENAMEAT2", None)
    monkeypatch.setattr(record, "_NO_RENAMEAT2", request.param == "replace")
    monkeypatch.setattr(record, "_GET_ERRNO", record._no_errno)
    return str(request.param)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    s = tmp_path / "site"
    (s / "pkg-1.0.dist-info").mkdir(parents=True)
    (s / "pkg-1.0.dist-info" / "RECORD").write_bytes(ORIGINAL)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a descriptor lost on the way would act here, not in the repository
    return s


@pytest.fixture
def rec(site: Path) -> Path:
    return site / "pkg-1.0.dist-info" / "RECORD"


def leftovers(site: Path) -> list[str]:
    """Temporary files in the site directory, its dist-info or the cwd."""
    found = []
    for d in (site, site / "pkg-1.0.dist-info", Path.cwd()):
        found += [f"{d.name}/{n}" for n in os.listdir(d) if n.startswith(TMP_PREFIX) or n.endswith(".tmp")]
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def installer_replaces(path: Path, data: bytes = INSTALLED) -> None:
    """What pip does: write a new file and os.replace it over RECORD."""
    new = path.with_name("RECORD.pip-new")
    new.write_bytes(data)
    os.replace(new, path)


def pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    return a, b


def signature(fn: Any) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    return [(t.__name__, t._type_) for t in fn.argtypes], (fn.restype.__name__, fn.restype._type_)


def check_renameat2(fn: Callable[..., int], tmp_path: Path) -> None:
    """``fn`` is a working renameat2 whose errno ``record._GET_ERRNO`` reads."""
    a, b = pair(tmp_path)
    assert fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0
    assert (a.read_bytes(), b.read_bytes()) == (b"second", b"first")
    d = os.open(tmp_path, os.O_RDONLY)
    try:
        assert fn(d, b"a", d, b"b", RENAME_EXCHANGE) == 0
        assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")
        _ctypes.set_errno(0)
        assert fn(-1, b"a", d, b"b", RENAME_EXCHANGE) == -1
        assert record._GET_ERRNO() == errno.EBADF
        _ctypes.set_errno(0)
        assert fn(d, b"missing", d, b"b", RENAME_EXCHANGE) == -1
        assert record._GET_ERRNO() == errno.ENOENT
    finally:
        os.close(d)
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


# --------------------------------------------------------------------------
# _load_renameat2
# --------------------------------------------------------------------------


@needs_renameat2
def test_fast_path_works_without_ctypes(fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ctypes", None)  # the fallback cannot hide a broken fast path
    fn = record._load_renameat2()
    assert fn is not None
    assert re.match(r"<renameat2 object at ", repr(fn))
    assert signature(fn) == SIGNATURE
    check_renameat2(fn, tmp_path)


@needs_renameat2
def test_ctypes_fallback_works_without_ctypes_module(
    fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "_ctypes", None)
    fn = record._load_renameat2()
    assert fn is not None
    assert type(fn).__module__ == "ctypes"
    assert signature(fn) == SIGNATURE
    check_renameat2(fn, tmp_path)


@needs_renameat2
def test_both_paths_declare_the_same_signature(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = record._load_renameat2()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "_ctypes", None)
        slow = record._load_renameat2()
    assert type(fast).__module__ != "ctypes"
    assert type(slow).__module__ == "ctypes"
    assert signature(fast) == signature(slow) == SIGNATURE


def test_libc_without_renameat2_gives_none(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # dlsym's answer on an old libc: the fast path says "none", without
    # trying ctypes (which would say the same, slower).
    class NoSymbol:
        def __new__(cls, spec: tuple[str, object]) -> NoSymbol:
            raise AttributeError(f"/lib/libc.so.6: undefined symbol: {spec[0]}")

    monkeypatch.setattr(_ctypes, "CFuncPtr", NoSymbol)
    assert record._load_renameat2() is None


@needs_renameat2
def test_other_missing_attribute_falls_back_to_ctypes(
    fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another implementation's _ctypes without what the fast path needs.
    monkeypatch.delattr(_ctypes, "FUNCFLAG_USE_ERRNO")
    fn = record._load_renameat2()
    assert fn is not None
    assert type(fn).__module__ == "ctypes"
    check_renameat2(fn, tmp_path)


@pytest.mark.skipif(LIBC_HAS_RENAMEAT2, reason="this libc has renameat2 (the tests above load it)")
def test_a_libc_without_renameat2_gives_none(fresh: None, tmp_path: Path) -> None:
    assert record._load_renameat2() is None
    a, b = pair(tmp_path)
    assert exchange_ab(tmp_path) == [False]
    assert record._NO_RENAMEAT2 is True
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


def test_no_ctypes_at_all_gives_none(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "_ctypes", None)
    monkeypatch.setitem(sys.modules, "ctypes", None)
    assert record._load_renameat2() is None


# --------------------------------------------------------------------------
# _exchange
# --------------------------------------------------------------------------


def exchange_ab(tmp_path: Path, times: int = 1) -> list[bool]:
    """``_exchange`` of tmp_path's ``a`` and ``b``, through a directory descriptor."""
    d = os.open(tmp_path, os.O_RDONLY)
    try:
        return [record._exchange(d, "a", d, "b") for _ in range(times)]
    finally:
        os.close(d)


@needs_renameat2
def test_exchange_loads_once_and_swaps(fresh: None, tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    d = os.open(tmp_path, os.O_RDONLY)
    try:
        assert record._exchange(d, "a", d, "b") is True
        assert (a.read_bytes(), b.read_bytes()) == (b"second", b"first")
        loaded = record._RENAMEAT2
        assert loaded is not None
        assert record._exchange(d, "a", d, "b") is True
        assert record._RENAMEAT2 is loaded
    finally:
        os.close(d)
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


def test_exchange_without_renameat2_asks_once(fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[int] = []

    def load() -> None:
        calls.append(1)

    monkeypatch.setattr(record, "_load_renameat2", load)
    a, b = pair(tmp_path)
    assert exchange_ab(tmp_path, times=2) == [False, False]
    assert calls == [1]
    assert record._NO_RENAMEAT2 is True
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


def test_exchange_known_missing_does_nothing(fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(record, "_NO_RENAMEAT2", True)
    a, b = pair(tmp_path)
    assert exchange_ab(tmp_path) == [False]
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


@pytest.mark.parametrize("err", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM])
def test_exchange_refused_by_kernel_is_remembered(fresh: None, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    calls: list[tuple[object, ...]] = []

    def renameat2(*args: object) -> int:
        calls.append(args)
        return -1

    monkeypatch.setattr(record, "_RENAMEAT2", renameat2)
    monkeypatch.setattr(record, "_GET_ERRNO", lambda: err)
    assert record._exchange(3, ".RECORD.x.tmp", 4, "RECORD") is False
    assert record._exchange(3, ".RECORD.x.tmp", 4, "RECORD") is False
    assert calls == [(3, b".RECORD.x.tmp", 4, b"RECORD", RENAME_EXCHANGE)]
    assert record._NO_RENAMEAT2 is True


@needs_renameat2
def test_exchange_other_error_raises(fresh: None, tmp_path: Path) -> None:
    pair(tmp_path)
    d = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            record._exchange(d, "missing", d, "b")
    finally:
        os.close(d)
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == os.strerror(errno.ENOENT)
    assert info.value.filename == "b"
    assert record._NO_RENAMEAT2 is False


# --------------------------------------------------------------------------
# Updates and installers that replace RECORD meanwhile (_replace, _locked)
# --------------------------------------------------------------------------


def during_write(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> list[str]:
    """Run ``action`` once, right after the new RECORD is written to its
    temporary file (before the swap)."""
    real = record._write_temp
    temps: list[str] = []

    def write_temp(site_fd: int, st: os.stat_result, data: bytes) -> str:
        tmp = real(site_fd, st, data)
        if not temps:
            action()
        temps.append(tmp)
        return tmp

    monkeypatch.setattr(record, "_write_temp", write_temp)
    return temps


def test_plain_update(swap: str, site: Path, rec: Path) -> None:
    fds = open_fds()
    ino = os.stat(rec).st_ino
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    assert rec.read_bytes() == ORIGINAL + ALIAS_ROW
    assert os.stat(rec).st_ino != ino
    assert remove_rows(str(rec), [ALIAS]) == [ALIAS]
    assert rec.read_bytes() == ORIGINAL
    assert leftovers(site) == []
    assert open_fds() == fds
    assert record._NO_RENAMEAT2 is (swap == "replace" or not LIBC_HAS_RENAMEAT2)


def test_installer_replacing_record_meanwhile_is_not_lost(
    swap: str, site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fds = open_fds()
    temps = during_write(monkeypatch, lambda: installer_replaces(rec))
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    assert len(temps) == 2  # the first copy was stale: written again from the installer's RECORD
    assert temps[0] != temps[1]
    assert rec.read_bytes() == INSTALLED + ALIAS_ROW
    assert leftovers(site) == []
    assert open_fds() == fds


def test_record_replaced_by_symlink_meanwhile_is_left_alone(
    swap: str, site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The symlink leads to the very inode we locked (a hard link of it):
    # only a check that does not follow symlinks sees that RECORD changed.
    keep = site / "RECORD.keep"

    def to_symlink() -> None:
        os.link(rec, keep)
        rec.unlink()
        rec.symlink_to(keep)

    during_write(monkeypatch, to_symlink)
    with pytest.raises(RecordError, match=r"^cannot open RECORD: not a regular file \(a symlink\)$"):
        append_rows(str(rec), [ALIAS])
    assert rec.is_symlink()
    assert os.readlink(rec) == str(keep)
    assert keep.read_bytes() == ORIGINAL
    assert leftovers(site) == []


def test_failed_write_leaves_nothing(swap: str, site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fds = open_fds()
    ino = os.stat(rec).st_ino

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(os, "write", full)
        with pytest.raises(RecordError, match=r"^cannot write RECORD: No space left on device$"):
            append_rows(str(rec), [ALIAS])
    assert rec.read_bytes() == ORIGINAL
    assert os.stat(rec).st_ino == ino
    assert leftovers(site) == []
    assert open_fds() == fds


def fake_fcntl(on_lock: Callable[[int], None]) -> types.SimpleNamespace:
    calls = [0]

    def flock(fd: int, how: int) -> None:
        calls[0] += 1
        on_lock(calls[0])
        fcntl.flock(fd, how)

    return types.SimpleNamespace(flock=flock, LOCK_EX=fcntl.LOCK_EX, calls=calls)


def test_record_replaced_before_lock_is_locked_again(site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fds = open_fds()
    fake = fake_fcntl(lambda n: installer_replaces(rec) if n == 1 else None)
    monkeypatch.setattr(record, "fcntl", fake)
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    assert fake.calls == [2]
    assert rec.read_bytes() == INSTALLED + ALIAS_ROW
    assert open_fds() == fds  # the first descriptor (and its lock) was let go
    assert leftovers(site) == []


def test_record_removed_before_lock(site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fds = open_fds()
    monkeypatch.setattr(record, "fcntl", fake_fcntl(lambda n: rec.unlink() if n == 1 else None))
    with pytest.raises(RecordError, match=r"^cannot open RECORD: No such file or directory$"):
        append_rows(str(rec), [ALIAS])
    assert not rec.exists()
    assert leftovers(site) == []
    assert open_fds() == fds


def test_record_replaced_at_every_lock_gives_up_after_1000(
    site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fds = open_fds()
    spare, hold = site / "RECORD.spare", site / "RECORD.hold"
    spare.write_bytes(INSTALLED)

    def swap_in_the_other(n: int) -> None:  # a new inode at RECORD each time, cheaply
        os.rename(rec, hold)
        os.rename(spare, rec)
        os.rename(hold, spare)

    fake = fake_fcntl(swap_in_the_other)
    monkeypatch.setattr(record, "fcntl", fake)
    with pytest.raises(RecordError, match=r"^RECORD keeps being replaced by another process$"):
        append_rows(str(rec), [ALIAS])
    assert fake.calls == [1000]
    assert (rec.read_bytes(), spare.read_bytes()) == (ORIGINAL, INSTALLED)
    assert leftovers(site) == []
    assert open_fds() == fds


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "No such file or directory"),
        (lambda p: p.mkdir(), "not a regular file (a directory)"),
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO)"),
    ],
)
def test_unopenable_record_message(tmp_path: Path, make: Callable[[Path], None], reason: str) -> None:
    (tmp_path / "pkg-1.0.dist-info").mkdir()
    rec = tmp_path / "pkg-1.0.dist-info" / "RECORD"
    make(rec)
    with pytest.raises(RecordError, match=f"^cannot open RECORD: {re.escape(reason)}$"):
        append_rows(str(rec), [ALIAS])
    with pytest.raises(RecordError, match=f"^cannot open RECORD: {re.escape(reason)}$"):
        remove_rows(str(rec), [ALIAS])


def test_missing_site_directory_message(tmp_path: Path) -> None:
    rec = str(tmp_path / "absent" / "pkg-1.0.dist-info" / "RECORD")
    for call in (lambda: append_rows(rec, [ALIAS]), lambda: remove_rows(rec, [ALIAS]), lambda: read_record(rec)):
        with pytest.raises(RecordError, match=r"^cannot open RECORD: No such file or directory$"):
            call()


def test_dist_info_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "pkg-1.0.dist-info"
    outside.mkdir(parents=True)
    (outside / "RECORD").write_bytes(ORIGINAL)
    site = tmp_path / "site"
    site.mkdir()
    (site / "pkg-1.0.dist-info").symlink_to(outside)
    with pytest.raises(RecordError, match=r"^cannot read RECORD: .*outside the site directory"):
        read_record(str(site / "pkg-1.0.dist-info" / "RECORD"))


# --------------------------------------------------------------------------
# _read_fd: the size bound, over several reads
# --------------------------------------------------------------------------


def big_record() -> bytes:
    """A valid RECORD of a little more than 1.5 MiB (two reads of 1 MiB)."""
    rows = b"".join(b"pkg/sub/module_%07d.py,sha256=%043d,%d\n" % (i, i, i) for i in range(20_000))
    assert 3 << 19 < len(rows) < 2 << 20
    return rows


@pytest.mark.parametrize("data", [ORIGINAL, big_record()], ids=["small", "two-reads"])
def test_record_of_exactly_the_limit_is_read(
    site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    rec.write_bytes(data)
    monkeypatch.setattr(record, "_MAX_RECORD", len(data))
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    assert rec.read_bytes() == data + ALIAS_ROW


@pytest.mark.parametrize("data", [ORIGINAL, big_record()], ids=["small", "two-reads"])
def test_record_over_the_limit_is_refused(site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    rec.write_bytes(data)
    monkeypatch.setattr(record, "_MAX_RECORD", len(data) - 1)
    with pytest.raises(RecordError, match=r"^RECORD is larger than 64 MiB$"):
        append_rows(str(rec), [ALIAS])
    assert rec.read_bytes() == data
    assert leftovers(site) == []


# --------------------------------------------------------------------------
# Owners (root only), serialization
# --------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give files away")
@pytest.mark.parametrize("owner", [(12345, 12346), (1, 0), (0, 1), (0, 0)])
def test_root_keeps_the_owner(site: Path, rec: Path, owner: tuple[int, int]) -> None:
    os.chown(rec, *owner)
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    st = os.stat(rec)
    assert (st.st_uid, st.st_gid) == owner
    assert stat.S_IMODE(st.st_mode) == 0o644


def test_carriage_return_row_ends_like_the_others(site: Path, rec: Path) -> None:
    assert append_rows(str(rec), ["cr\rpath.so", "plain.so"]) == ["cr\rpath.so", "plain.so"]
    assert rec.read_bytes() == ORIGINAL + b'"cr\rpath.so","",""\nplain.so,,\n'


def test_undecodable_path_message(site: Path, rec: Path) -> None:
    with pytest.raises(RecordError, match=r"^a path cannot be written to RECORD as UTF-8$"):
        append_rows(str(rec), [os.fsdecode(b"\xff.so")])
    assert rec.read_bytes() == ORIGINAL


# --------------------------------------------------------------------------
# clean_stale_temps
# --------------------------------------------------------------------------


def test_temp_of_someone_elses_live_process_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        if pid == 424242:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))  # alive, another user's
        if pid == 424243:
            raise ProcessLookupError(errno.ESRCH, os.strerror(errno.ESRCH))
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    theirs, gone = f"{TMP_PREFIX}424242.00aa11bb.tmp", f"{TMP_PREFIX}424243.00aa11bb.tmp"
    for name in (theirs, gone):
        (tmp_path / name).write_bytes(b"half")
    assert clean_stale_temps(str(tmp_path)) == [gone]
    assert sorted(os.listdir(tmp_path)) == [theirs]


class _Hung(Exception):
    pass


def test_clean_stale_temps_does_not_open_a_fifo(tmp_path: Path) -> None:
    # Opening a FIFO for reading waits for a writer; O_DIRECTORY refuses it
    # at once.  The alarm only turns a hang into a failure.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def hung(signum: int, frame: object) -> None:
        raise _Hung("clean_stale_temps opened a FIFO and waited for a writer")

    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        assert clean_stale_temps(str(fifo)) == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_clean_stale_temps_of_a_file_is_empty(tmp_path: Path) -> None:
    f = tmp_path / f"{TMP_PREFIX}1.tmp"
    f.write_bytes(b"")
    assert clean_stale_temps(str(f)) == []
    assert f.exists()


# --------------------------------------------------------------------------
# _update: where RECORD is, retries, read-back check; load_record
# --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["RECORD", "lib/pkg-1.0.dist-info/RECORD"])
def test_record_at_any_depth_below_the_site(swap: str, site: Path, where: str) -> None:
    """Directly in the site directory, or two directories down."""
    (site / where).parent.mkdir(parents=True, exist_ok=True)
    (site / where).write_bytes(ORIGINAL)
    with SiteDir(str(site)) as sd:
        assert append_rows_at(sd, where, [ALIAS]) == [ALIAS]
    assert (site / where).read_bytes() == ORIGINAL + ALIAS_ROW
    assert leftovers(site) == []


def test_dist_info_symlink_leading_outside_is_not_written(tmp_path: Path, site: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "RECORD").write_bytes(ORIGINAL)
    (site / "lib").mkdir()
    (site / "lib" / "pkg-1.0.dist-info").symlink_to(outside)
    outside_message = r"^cannot open RECORD: .*outside the site directory"
    with SiteDir(str(site)) as sd, pytest.raises(RecordError, match=outside_message):
        append_rows_at(sd, "lib/pkg-1.0.dist-info/RECORD", [ALIAS])
    assert (outside / "RECORD").read_bytes() == ORIGINAL


def test_missing_dist_info_message(site: Path) -> None:
    rec = str(site / "absent-1.0.dist-info" / "RECORD")
    for call in (lambda: append_rows(rec, [ALIAS]), lambda: remove_rows(rec, [ALIAS])):
        with pytest.raises(RecordError, match=r"^cannot open RECORD: No such file or directory$"):
            call()


def test_record_rewritten_at_every_attempt_gives_up_after_100(
    site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fds = open_fds()
    real = record._write_temp
    written: list[str] = []

    def write_temp(site_fd: int, st: os.stat_result, data: bytes) -> str:
        tmp = real(site_fd, st, data)
        written.append(tmp)
        installer_replaces(rec, INSTALLED + b"n%d,,\n" % len(written))
        return tmp

    monkeypatch.setattr(record, "_write_temp", write_temp)
    with pytest.raises(RecordError, match=r"^RECORD keeps changing under us; left as it is$"):
        append_rows(str(rec), [ALIAS])
    assert len(written) == 100
    assert rec.read_bytes() == INSTALLED + b"n100,,\n"
    assert leftovers(site) == []
    assert open_fds() == fds


def test_known_record_is_not_trusted_after_a_retry(
    swap: str, site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SiteDir(str(site)) as sd:
        known = load_record(sd, "pkg-1.0.dist-info/RECORD")
        during_write(monkeypatch, lambda: installer_replaces(rec))
        assert append_rows_at(sd, "pkg-1.0.dist-info/RECORD", [ALIAS], known) == [ALIAS]
    assert rec.read_bytes() == INSTALLED + ALIAS_ROW


def test_rows_that_do_not_read_back_are_never_written(site: Path, rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A serializer gone wrong (a csv quirk) must not reach the file.
    monkeypatch.setattr(record, "_serialize", lambda rows: b"something-else.so,,\n")
    with pytest.raises(RecordError, match=r"^the new rows do not read back as written$"):
        append_rows(str(rec), [ALIAS])
    assert rec.read_bytes() == ORIGINAL
    assert leftovers(site) == []


def test_append_after_a_lone_carriage_return_adds_no_line_feed(site: Path, rec: Path) -> None:
    original = ORIGINAL.replace(b"\n", b"\r")
    rec.write_bytes(original)
    assert append_rows(str(rec), [ALIAS]) == [ALIAS]
    assert rec.read_bytes() == original + ALIAS_ROW


def test_load_record(site: Path, rec: Path) -> None:
    with SiteDir(str(site)) as sd:
        got = load_record(sd, "pkg-1.0.dist-info/RECORD")
        assert got is not None
        assert got.rel == "pkg-1.0.dist-info/RECORD"
        assert got.data == ORIGINAL
        assert got.rows == [("pkg/__init__.py", "sha256=abc", "0"), ("pkg-1.0.dist-info/RECORD", "", "")]
        assert got.identity[0] == os.stat(rec).st_ino
        assert load_record(sd, "absent.dist-info/RECORD", missing_ok=True) is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "No such file or directory"),
        (lambda p: p.mkdir(), "not a regular file (a directory)"),
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO)"),
    ],
)
def test_unreadable_record_message(site: Path, rec: Path, make: Callable[[Path], None], reason: str) -> None:
    rec.unlink()
    make(rec)
    with pytest.raises(RecordError, match=f"^cannot read RECORD: {re.escape(reason)}$"):
        read_record(str(rec))
    with SiteDir(str(site)) as sd, pytest.raises(RecordError, match=f"^cannot read RECORD: {re.escape(reason)}$"):
        load_record(sd, "pkg-1.0.dist-info/RECORD")


def test_load_record_outside_raises_outside_error(tmp_path: Path, site: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "RECORD").write_bytes(ORIGINAL)
    (site / "out-1.0.dist-info").symlink_to(outside)
    with SiteDir(str(site)) as sd, pytest.raises(OutsideError):
        load_record(sd, "out-1.0.dist-info/RECORD", missing_ok=True)


# --------------------------------------------------------------------------
# parse_record: the exact reasons, with line numbers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a,b,c\n\nd,e,f\n", "RECORD line 2 has a blank line, not 3 fields"),
        (b"\r\n", "RECORD line 1 has a blank line, not 3 fields"),
        (b"a,b,c\nd,e,f\ng\n", "RECORD line 3 has 1 fields, not 3 fields"),
        (b"a,b,c\nx,y\n", "RECORD line 2 has 2 fields, not 3 fields"),
        (b"w,x,y,z\n", "RECORD line 1 has 4 fields, not 3 fields"),
        (b"a,b,c\n,sha256=x,1\n", "RECORD line 2 has an empty path"),
        (b"caf\xe9.py,,\n", "RECORD is not valid UTF-8"),
        (b"a,b,c\nx\x00y,,\n", "RECORD contains NUL bytes"),
        (b'"' + b"x" * 200_000 + b'",,\n', "RECORD is not valid CSV: field larger than field limit (*)"),
    ],
)
def test_parse_record_reasons(data: bytes, message: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_record(data)
    pattern = re.escape(message).replace(re.escape("*"), r"\d+")  # csv's limit, whatever it is set to
    assert re.fullmatch(pattern, str(info.value))


def test_parse_record_keeps_line_breaks_inside_quotes() -> None:
    data = b'"multi\r\nline.py",,\r\n"cr\ronly.py",sha256=x,1\r\nplain.py,,\r\n'
    assert parse_record(data) == [("multi\r\nline.py", "", ""), ("cr\ronly.py", "sha256=x", "1"), ("plain.py", "", "")]
