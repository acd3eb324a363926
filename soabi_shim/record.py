"""Reading and updating a distribution's ``RECORD`` safely.

Rules:

* A RECORD is parsed strictly (UTF-8, three fields a row, no blank rows:
  a blank line makes ``importlib.metadata.files()`` raise and
  ``pip uninstall`` crash).  One that does not parse is never rewritten.
* Updates are serialized with ``flock`` on the RECORD file itself (no lock
  file is left behind), re-read under the lock, written to a temporary file
  beside it and moved into place with ``os.replace``: a kill at any instant
  leaves either the old or the new RECORD, both complete.  The installed
  inode is never written to (uv hardlinks installed files from its cache).
* Appended rows are added to the original bytes unchanged.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Callable, Optional

from .errors import RecordError

__all__ = ["TMP_PREFIX", "append_rows", "clean_stale_temps", "parse_record", "read_record", "remove_rows"]

TMP_PREFIX = ".RECORD.soabi-shim."
_MAX_RECORD = 64 * 1024 * 1024


def parse_record(data: bytes) -> list[tuple[str, str, str]]:
    """Parse RECORD bytes strictly; :class:`RecordError` on anything odd."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("RECORD is not valid UTF-8") from None
    if "\0" in text:
        raise RecordError("RECORD contains NUL bytes")
    rows: list[tuple[str, str, str]] = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
            if len(row) != 3:
                what = "a blank line" if not row else f"{len(row)} fields"
                raise RecordError(f"RECORD line {number} has {what}, not 3 fields")
            if not row[0]:
                raise RecordError(f"RECORD line {number} has an empty path")
            rows.append((row[0], row[1], row[2]))
    except csv.Error as exc:
        raise RecordError(f"RECORD is not valid CSV: {exc}") from None
    return rows


def read_record(path: str) -> list[tuple[str, str, str]]:
    """Read and parse the RECORD at ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_RECORD + 1)
    except OSError as exc:
        raise RecordError(f"cannot read RECORD: {exc.strerror or exc}") from None
    if len(data) > _MAX_RECORD:
        raise RecordError("RECORD is larger than 64 MiB")
    return parse_record(data)


@contextmanager
def _locked(path: str) -> Iterator[int]:
    """Hold ``flock`` on the file currently at ``path``.

    ``os.replace`` swaps the inode, so after taking the lock we check that
    ``path`` still names the locked inode, and retry if not.
    """
    for _ in range(1000):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise RecordError(f"cannot open RECORD: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                cur = os.stat(path, follow_symlinks=False)
            except OSError:
                cur = None
            if cur is not None and (cur.st_ino, cur.st_dev) == (st.st_ino, st.st_dev):
                yield fd
                return
        finally:
            os.close(fd)  # closing releases the lock
    raise RecordError("RECORD keeps being replaced by another process")


def _read_fd(fd: int) -> bytes:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        if sum(map(len, chunks)) > _MAX_RECORD:
            raise RecordError("RECORD is larger than 64 MiB")
    return b"".join(chunks)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(directory: str) -> list[str]:
    """Remove our own temporary files left in ``directory`` by killed processes.

    Only names made by :func:`_replace` (``.RECORD.soabi-shim.<pid>.<hex>.tmp``)
    whose process is gone are removed; return their names.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if not (name.startswith(TMP_PREFIX) and name.endswith(".tmp")):
            continue
        pid = name[len(TMP_PREFIX) :].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns)


_RENAMEAT2: Optional[Callable[..., int]] = None
_NO_RENAMEAT2 = False


def _exchange(a: str, b: str) -> bool:
    """``renameat2(a, b, RENAME_EXCHANGE)``; False where the libc, kernel or
    file system cannot do it (the caller falls back to check-then-replace)."""
    global _RENAMEAT2, _NO_RENAMEAT2
    if _NO_RENAMEAT2:
        return False
    if _RENAMEAT2 is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
        except (ImportError, OSError, AttributeError):
            _NO_RENAMEAT2 = True
            return False
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        _RENAMEAT2 = fn
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        _NO_RENAMEAT2 = True
        return False
    raise OSError(err, os.strerror(err), b)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _replace(path: str, fd: int, data: bytes) -> None:
    # The temporary file goes in the site directory, not in ``*.dist-info``:
    # a stray file there (after a kill) would survive uninstall and leave a
    # ghost distribution.  Same file system, so os.replace stays atomic.
    directory = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    st = os.fstat(fd)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    out = os.open(tmp, flags, 0o600)
    try:
        try:
            os.fchmod(out, st.st_mode & 0o7777)  # not narrowed by the umask
            view = memoryview(data)
            while view:
                n = os.write(out, view)
                view = view[n:]
            os.fsync(out)
            if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
                os.fchown(out, st.st_uid, st.st_gid)
        finally:
            os.close(out)
        # Installers do not take our lock: pip writes its final RECORD with
        # its own os.replace.  If the file changed since we read it, our copy
        # is stale; writing it would drop the installer's rows.
        if _exchange(tmp, path):
            # Atomically swapped: ``tmp`` now names what was at ``path``.
            old = os.stat(tmp, follow_symlinks=False)
            if _same(old, st):
                os.unlink(tmp)
                return
            _exchange(tmp, path)  # someone replaced it meanwhile: give it back
            raise _Changed
        # No RENAME_EXCHANGE here: check as late as possible, then replace.
        if not _same(os.stat(path, follow_symlinks=False), st):
            raise _Changed
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Changed(Exception):
    """RECORD was replaced or rewritten by someone who does not lock."""


def _update(path: str, change: Callable[[bytes, list[tuple[str, str, str]]], bytes | None]) -> None:
    for _ in range(100):
        with _locked(path) as fd:
            data = _read_fd(fd)
            rows = parse_record(data)
            new = change(data, rows)
            if new is None or new == data:
                return
            parse_record(new)  # never write what we could not read back
            try:
                _replace(path, fd, new)
                return
            except _Changed:
                continue
            except OSError as exc:
                raise RecordError(f"cannot write RECORD: {exc.strerror or exc}") from None
    raise RecordError("RECORD keeps changing under us; left as it is")


def _serialize(rows: Iterable[tuple[str, str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        # The minimal dialect quotes "\n" but not a lone "\r", which would
        # split the row when read back.
        (quoted if any("\r" in field for field in row) else writer).writerow(row)
    try:
        return buf.getvalue().encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError("a path cannot be written to RECORD as UTF-8") from None


def append_rows(path: str, paths: Iterable[str]) -> list[str]:
    """Append ``path,,`` rows for ``paths`` not listed yet; return those added.

    Rows already present (by path) are not added again, so concurrent and
    repeated heals write no duplicate.
    """
    wanted = list(dict.fromkeys(paths))
    added: list[str] = []

    def change(data: bytes, rows: list[tuple[str, str, str]]) -> bytes | None:
        present = {r[0] for r in rows}
        new = [p for p in wanted if p not in present]
        added[:] = new
        if not new:
            return None
        prefix = data if not data or data.endswith((b"\n", b"\r")) else data + b"\n"
        return prefix + _serialize((p, "", "") for p in new)

    _update(path, change)
    return added


def remove_rows(path: str, paths: Iterable[str]) -> list[str]:
    """Remove the rows naming ``paths``; return those removed."""
    unwanted = set(paths)
    removed: list[str] = []

    def change(data: bytes, rows: list[tuple[str, str, str]]) -> bytes | None:
        gone = [r[0] for r in rows if r[0] in unwanted]
        removed[:] = gone
        if not gone:
            return None
        return _serialize(r for r in rows if r[0] not in unwanted)

    _update(path, change)
    return removed
