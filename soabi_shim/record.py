"""Reading and updating a distribution's ``RECORD`` safely.

Rules:

* A RECORD is parsed strictly (UTF-8, three fields a row, no blank rows:
  a blank line makes ``importlib.metadata.files()`` raise and
  ``pip uninstall`` crash).  One that does not parse is never rewritten.
* Every file operation goes through a :class:`~soabi_shim.sitefs.SiteDir`
  (``dir_fd``-relative, ``O_NOFOLLOW``, regular files only, bounded).
* Updates are serialized with ``flock`` on the RECORD file itself (no lock
  file is left behind), checked under the lock (re-read only if it changed
  since the scan read it), written to a temporary file in the site
  directory and swapped in with ``renameat2(RENAME_EXCHANGE)`` (given back
  if an installer replaced RECORD meanwhile; check-then-replace where the
  kernel cannot exchange): a kill at any instant leaves either the old or
  the new RECORD, both complete.  The installed inode is never written to
  (uv hardlinks installed files from its cache).
* Appended rows are added to the original bytes unchanged.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os

from ._plain import Frozen
from .errors import OutsideError, RecordError, SiteError
from .sitefs import SiteDir, describe, open_regular_at

# No typing, contextlib or dataclasses at run time (a healing start); the
# csv reader and writer from ``_csv``, the C module ``csv`` re-exports
# (``csv`` itself imports ``re`` for its Sniffer).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import csv
    from collections.abc import Iterable
    from typing import Any, Callable, Optional, overload

    _Change = Callable[[bytes, list[tuple[str, str, str]]], Optional[bytes]]
else:
    try:
        import _csv as csv
    except ImportError:  # pragma: no cover - an implementation without _csv
        import csv

__all__ = [
    "TMP_PREFIX",
    "RecordFile",
    "append_rows",
    "append_rows_at",
    "clean_stale_temps",
    "clean_stale_temps_at",
    "load_record",
    "parse_record",
    "read_record",
    "remove_rows",
    "remove_rows_at",
]

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
    if '"' in text:
        return _parse_csv(text)
    # pip writes RECORD with the csv writer's CRLF; outside quotes a CRLF
    # ends a row just as LF does.
    plain = text.replace("\r\n", "\n") if "\r" in text else text
    if "\r" in plain:
        return _parse_csv(text)
    return _parse_plain(plain)


def _parse_csv(text: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
            _check_row(number, row)
            rows.append((row[0], row[1], row[2]))
    except csv.Error as exc:
        raise RecordError(f"RECORD is not valid CSV: {exc}") from None
    return rows


def _parse_plain(text: str) -> list[tuple[str, str, str]]:
    """What :func:`_parse_csv` returns for a RECORD with no quote and no
    carriage return (nearly every RECORD, once CRLF is LF), faster: then a
    row is a line and a field is what lies between two commas.  Anything irregular (a row
    without three fields or with an empty path, a line longer than the csv
    reader's field limit) is left to the reader, for its exact error."""
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()  # the last line's terminator
    try:
        rows = [(path, hash_, size) for path, hash_, size in [line.split(",") for line in lines]]
    except ValueError:  # a row without three fields
        return _parse_csv(text)
    if lines and (max(map(len, lines)) > csv.field_size_limit() or not all(row[0] for row in rows)):
        return _parse_csv(text)
    return rows


def _check_row(number: int, row: list[str]) -> None:
    if len(row) != 3:
        what = "a blank line" if not row else f"{len(row)} fields"
        raise RecordError(f"RECORD line {number} has {what}, not 3 fields")
    if not row[0]:
        raise RecordError(f"RECORD line {number} has an empty path")


class RecordFile(Frozen):
    """One RECORD as read once by the scan: its bytes, rows and identity.

    :func:`append_rows_at` and :func:`remove_rows_at` reuse it instead of
    reading the file again when, under the lock, the file is still the same
    (inode, size, mtime and ctime).
    """

    _fields = ("rel", "data", "rows", "identity")
    __slots__ = _fields
    rel: str  # relative to the site directory, e.g. ``pkg-1.0.dist-info/RECORD``
    data: bytes
    rows: list[tuple[str, str, str]]
    identity: tuple[int, ...]

    def __init__(self, rel: str, data: bytes, rows: list[tuple[str, str, str]], identity: tuple[int, ...]) -> None:
        put = object.__setattr__
        put(self, "rel", rel)
        put(self, "data", data)
        put(self, "rows", rows)
        put(self, "identity", identity)


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


if TYPE_CHECKING:

    @overload
    def load_record(site: SiteDir, rel: str) -> RecordFile: ...
    @overload
    def load_record(site: SiteDir, rel: str, *, missing_ok: bool) -> Optional[RecordFile]: ...


def load_record(site: SiteDir, rel: str, *, missing_ok: bool = False) -> Optional[RecordFile]:
    """Read and parse the RECORD ``rel`` of ``site`` (regular files only,
    bounded); :class:`RecordError` with the reason otherwise.

    ``missing_ok``: None if there is no such file (or its directory is not
    a directory).  A directory that leads outside the site directory raises
    :class:`~soabi_shim.errors.OutsideError` itself.
    """
    try:
        data, st = site.read(rel, _MAX_RECORD)
    except (FileNotFoundError, NotADirectoryError) as exc:
        if missing_ok:
            return None
        raise RecordError(f"cannot read RECORD: {describe(exc)}") from None
    except OutsideError:
        raise
    except (OSError, SiteError) as exc:
        raise RecordError(f"cannot read RECORD: {describe(exc)}") from None
    return RecordFile(rel, data, parse_record(data), _identity(st))


def _at(path: str) -> tuple[SiteDir, str]:
    """The site directory of a ``<site>/<name>.dist-info/RECORD`` path."""
    full = os.path.abspath(path)
    dist_info = os.path.dirname(full)
    try:
        site = SiteDir(os.path.dirname(dist_info))
    except OSError as exc:
        raise RecordError(f"cannot open RECORD: {exc.strerror or exc}") from None
    return site, os.path.basename(dist_info) + "/" + os.path.basename(full)


def read_record(path: str) -> list[tuple[str, str, str]]:
    """Read and parse the RECORD at ``path``."""
    site, rel = _at(path)
    with site:
        try:
            return load_record(site, rel).rows
        except OutsideError as exc:
            raise RecordError(f"cannot read RECORD: {exc}") from None


class _locked:
    """``with _locked(dir_fd, name) as (fd, st)``: hold ``flock`` on the
    RECORD currently named ``name`` in ``dir_fd``.

    An installer's ``os.replace`` swaps the inode, so after taking the lock
    we check that the name still names the locked inode, and retry if not.
    """

    def __init__(self, dir_fd: int, name: str) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.fd = -1

    def __enter__(self) -> tuple[int, os.stat_result]:
        dir_fd, name = self.dir_fd, self.name
        for _ in range(1000):
            try:
                fd, st = open_regular_at(dir_fd, name)
            except (OSError, SiteError) as exc:
                raise RecordError(f"cannot open RECORD: {describe(exc)}") from None
            held = False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                try:
                    cur = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    cur = None
                if cur is not None and (cur.st_ino, cur.st_dev) == (st.st_ino, st.st_dev):
                    held = True
                    self.fd = fd
                    return fd, st
            finally:
                if not held:
                    os.close(fd)  # closing releases the lock
        raise RecordError("RECORD keeps being replaced by another process")

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock


def _read_fd(fd: int) -> bytes:
    chunks = []
    total = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > _MAX_RECORD:
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


def _stale(name: str) -> bool:
    if not (name.startswith(TMP_PREFIX) and name.endswith(".tmp")):
        return False
    pid = name[len(TMP_PREFIX) :].split(".", 1)[0]
    return pid.isdigit() and not _pid_alive(int(pid))


def clean_stale_temps_at(dir_fd: int, names: Iterable[str]) -> list[str]:
    """Remove those of ``names`` in ``dir_fd`` that are our own temporary
    files left by killed processes; return their names."""
    removed = []
    for name in names:
        if _stale(name):
            try:
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
            except OSError:
                pass
    return removed


def clean_stale_temps(directory: str) -> list[str]:
    """Remove our own temporary files left in ``directory`` by killed processes.

    Only names made by :func:`_replace` (``.RECORD.soabi-shim.<pid>.<hex>.tmp``)
    whose process is gone are removed; return their names.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return []
    try:
        return clean_stale_temps_at(fd, os.listdir(fd))
    except OSError:
        return []
    finally:
        os.close(fd)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns)


_RENAMEAT2: Optional[Callable[..., int]] = None
_NO_RENAMEAT2 = False


def _no_errno() -> int:
    return 0


#: ``get_errno`` of the ctypes that loaded :data:`_RENAMEAT2`.
_GET_ERRNO: Callable[[], int] = _no_errno


def _load_renameat2() -> Optional[Callable[..., int]]:
    """libc's ``renameat2`` (errno kept), or None where there is none.

    Straight from ``_ctypes``, the C module under :mod:`ctypes`: importing
    ``ctypes`` itself costs several milliseconds (it makes a libffi
    closure at import), most of a healing start's extra time.  Where
    ``_ctypes`` lacks what this needs (another implementation), ``ctypes``.
    """
    global _GET_ERRNO
    try:
        import _ctypes

        ct: Any = _ctypes  # private API, the same since Python 2.6: untyped here

        def simple(name: str, code: str) -> Any:
            return type(ct._SimpleCData)(name, (ct._SimpleCData,), {"_type_": code})

        c_int = simple("c_int", "i")
        function = type(ct.CFuncPtr)(
            "renameat2",
            (ct.CFuncPtr,),
            {"_flags_": ct.FUNCFLAG_CDECL | ct.FUNCFLAG_USE_ERRNO, "_restype_": c_int},
        )
        # What ctypes.CDLL(None) hands over: the handle of the program itself.
        process = type("process", (), {"_handle": ct.dlopen(None, 0)})
        fn = function(("renameat2", process))
        fn.argtypes = (c_int, simple("c_char_p", "z"), c_int, simple("c_char_p", "z"), simple("c_uint", "I"))
        _GET_ERRNO = ct.get_errno
        return fn  # type: ignore[no-any-return]
    except AttributeError as exc:
        if "renameat2" in str(exc):  # the libc has none
            return None
    except (ImportError, OSError, TypeError, ValueError):
        pass
    try:
        import ctypes

        full = ctypes.CDLL(None, use_errno=True).renameat2
    except (ImportError, OSError, AttributeError):
        return None
    full.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    full.restype = ctypes.c_int
    _GET_ERRNO = ctypes.get_errno
    return full


def _exchange(src_fd: int, src: str, dst_fd: int, dst: str) -> bool:
    """``renameat2(src_fd, src, dst_fd, dst, RENAME_EXCHANGE)``; False where
    the libc, kernel or file system cannot do it (the caller falls back to
    check-then-replace)."""
    global _RENAMEAT2, _NO_RENAMEAT2
    if _NO_RENAMEAT2:
        return False
    if _RENAMEAT2 is None:
        fn = _load_renameat2()
        if fn is None:
            _NO_RENAMEAT2 = True
            return False
        _RENAMEAT2 = fn
    if _RENAMEAT2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_EXCHANGE) == 0:
        return True
    err = _GET_ERRNO()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        _NO_RENAMEAT2 = True
        return False
    raise OSError(err, os.strerror(err), dst)


_RENAME_EXCHANGE = 2
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def _write_temp(site_fd: int, st: os.stat_result, data: bytes) -> str:
    tmp = f"{TMP_PREFIX}{os.getpid()}.{os.urandom(4).hex()}.tmp"
    out = os.open(tmp, _CREATE, 0o600, dir_fd=site_fd)
    try:
        os.fchmod(out, st.st_mode & 0o7777)  # not narrowed by the umask
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            os.fchown(out, st.st_uid, st.st_gid)
    except BaseException:
        os.close(out)
        _unlink_quietly(site_fd, tmp)
        raise
    os.close(out)
    return tmp


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _replace(site_fd: int, dir_fd: int, name: str, st: os.stat_result, data: bytes) -> None:
    # The temporary file goes in the site directory, not in ``*.dist-info``:
    # a stray file there (after a kill) would survive uninstall and leave a
    # ghost distribution.  Same file system, so the rename stays atomic.
    # No fsync: see docs/how-it-works.md ("Durability").
    tmp = _write_temp(site_fd, st, data)
    try:
        # Installers do not take our lock: pip writes its final RECORD with
        # its own os.replace.  If the file changed since we read it, our copy
        # is stale; writing it would drop the installer's rows.
        if _exchange(site_fd, tmp, dir_fd, name):
            # Atomically swapped: ``tmp`` now names what was at ``name``.
            old = os.stat(tmp, dir_fd=site_fd, follow_symlinks=False)
            if _same(old, st):
                os.unlink(tmp, dir_fd=site_fd)
                return
            _exchange(site_fd, tmp, dir_fd, name)  # someone replaced it meanwhile: give it back
            raise _Changed
        # No RENAME_EXCHANGE here: check as late as possible, then replace.
        if not _same(os.stat(name, dir_fd=dir_fd, follow_symlinks=False), st):
            raise _Changed
        os.replace(tmp, name, src_dir_fd=site_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _unlink_quietly(site_fd, tmp)
        raise


class _Changed(Exception):
    """RECORD was replaced or rewritten by someone who does not lock."""


def _update(site: SiteDir, rel: str, change: _Change, known: Optional[RecordFile]) -> None:
    head, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
    try:
        dir_fd = site.open_dir(head)
    except (OSError, SiteError) as exc:
        raise RecordError(f"cannot open RECORD: {describe(exc)}") from None
    try:
        for _ in range(100):
            with _locked(dir_fd, name) as (fd, st):
                if known is not None and known.identity == _identity(st):
                    data, rows = known.data, known.rows  # what the scan read: not read again
                else:
                    data = _read_fd(fd)
                    rows = parse_record(data)
                known = None
                new = change(data, rows)  # checks that it can read back what it made
                if new is None or new == data:
                    return
                try:
                    _replace(site.fd, dir_fd, name, st, new)
                    return
                except _Changed:
                    continue
                except OSError as exc:
                    raise RecordError(f"cannot write RECORD: {exc.strerror or exc}") from None
        raise RecordError("RECORD keeps changing under us; left as it is")
    finally:
        os.close(dir_fd)


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


def _appender(paths: Iterable[str], added: list[str]) -> _Change:
    wanted = list(dict.fromkeys(paths))

    def change(data: bytes, rows: list[tuple[str, str, str]]) -> Optional[bytes]:
        present = {r[0] for r in rows}
        new = [p for p in wanted if p not in present]
        added[:] = new
        if not new:
            return None
        prefix = data if not data or data.endswith((b"\n", b"\r")) else data + b"\n"
        tail = _serialize((p, "", "") for p in new)
        # Never write what we could not read back.  The original parsed and
        # ends with a line break, so the new rows parse on their own.
        if [r[0] for r in parse_record(tail)] != new:
            raise RecordError("the new rows do not read back as written")
        return prefix + tail

    return change


def _remover(paths: Iterable[str], removed: list[str]) -> _Change:
    unwanted = set(paths)

    def change(data: bytes, rows: list[tuple[str, str, str]]) -> Optional[bytes]:
        gone = [r[0] for r in rows if r[0] in unwanted]
        removed[:] = gone
        if not gone:
            return None
        new = _serialize(r for r in rows if r[0] not in unwanted)
        parse_record(new)  # never write what we could not read back
        return new

    return change


def append_rows_at(site: SiteDir, rel: str, paths: Iterable[str], known: Optional[RecordFile] = None) -> list[str]:
    """Append ``path,,`` rows for ``paths`` not listed yet to the RECORD
    ``rel`` of ``site``; return those added.

    Rows already present (by path) are not added again, so concurrent and
    repeated heals write no duplicate.  ``known``: the RECORD as the scan
    read it, used if the file has not changed since.
    """
    added: list[str] = []
    _update(site, rel, _appender(paths, added), known)
    return added


def remove_rows_at(site: SiteDir, rel: str, paths: Iterable[str], known: Optional[RecordFile] = None) -> list[str]:
    """Remove the rows naming ``paths`` from the RECORD ``rel``; return those removed."""
    removed: list[str] = []
    _update(site, rel, _remover(paths, removed), known)
    return removed


def append_rows(path: str, paths: Iterable[str]) -> list[str]:
    """:func:`append_rows_at` for the RECORD at ``path`` (``<site>/<dist-info>/RECORD``)."""
    site, rel = _at(path)
    with site:
        return append_rows_at(site, rel, paths)


def remove_rows(path: str, paths: Iterable[str]) -> list[str]:
    """:func:`remove_rows_at` for the RECORD at ``path``."""
    site, rel = _at(path)
    with site:
        return remove_rows_at(site, rel, paths)
