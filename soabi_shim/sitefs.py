"""A handle on one site directory: containment by construction (floor 2).

A :class:`SiteDir` opens its directory once (``O_DIRECTORY``).  Every later
operation names a ``/``-separated path *relative to it* (as RECORD does) and
walks there with ``openat``: each directory component is opened with
``O_NOFOLLOW | O_DIRECTORY`` from the file descriptor of the one before, and
the last component is used through ``dir_fd=``.  So

* nothing outside the site directory can be reached: ``..`` and symlinks are
  resolved by this module, lexically, against the components already walked,
  and a path that climbs above the site directory, or a symlink whose target
  is absolute and not below the site directory's own path, raises
  :class:`~soabi_shim.errors.OutsideError`;
* no component can be swapped for a symlink between a check and the use:
  the use goes through the directory descriptor that was checked;
* only regular files are read (:meth:`SiteDir.read`: ``lstat`` first, then
  ``O_NONBLOCK | O_NOFOLLOW`` and ``fstat``), with a size bound: a FIFO, a
  socket, a device, a directory or a symlink (to ``/proc/kmsg``, say) raise
  :class:`~soabi_shim.errors.NotRegularError` without blocking;
* files are created with ``O_EXCL | O_NOFOLLOW`` and symlinks with one
  ``symlinkat(2)``, which never overwrite anything.

The site directory itself is found by its path once (it may be reached
through symlinks, e.g. ``lib64 -> lib``).  Under ``--root`` the caller opens
the site directory found inside the image; an absolute symlink inside it is
then "outside" unless it names the site directory's own path, and is refused.

OS errors (``FileNotFoundError`` when something vanished under us, ...) are
raised as they are; :func:`describe` turns any of them into a problem text.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import NotRegularError, OutsideError, SiteError

# No typing or collections at run time (a healing start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Optional

__all__ = ["SiteDir", "describe", "file_kind", "open_regular_at", "split"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _NOFOLLOW | _CLOEXEC
_MAX_SYMLINKS = 40  # as the kernel's path walk
_CACHE = 64  # directory descriptors kept open per SiteDir


def _walk(fd: int, head: str, suffix: str, skip_dirs: tuple[str, ...]) -> Iterator[str]:
    files: list[str] = []
    dirs: list[str] = []
    with os.scandir(fd) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir()  # a symlink to a directory is one, and is not entered
            except OSError:  # a symlink loop is a file; anything else that fails went away
                is_dir = False
                if not entry.is_symlink():
                    continue
            if is_dir:
                if not entry.name.endswith(skip_dirs):
                    dirs.append(entry.name)
            elif entry.name.endswith(suffix):
                files.append(entry.name)
    for name in sorted(files):
        yield head + name
    for name in sorted(dirs):
        try:  # O_NOFOLLOW: never into a symlink; O_DIRECTORY: still a directory
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            continue
        try:
            yield from _walk(sub, head + name + "/", suffix, skip_dirs)
        finally:
            os.close(sub)


def split(rel: str) -> tuple[str, str]:
    """``"a/b/c.so"`` -> ``("a/b", "c.so")``; ``"c.so"`` -> ``("", "c.so")``."""
    head, _, name = rel.rpartition("/")
    return head, name


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a directory"``, ... for the file type in ``mode``."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "of an unknown type"


def describe(exc: BaseException) -> str:
    """The reason text of an error from this module (or any ``OSError``)."""
    if isinstance(exc, SiteError):
        return str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def open_regular_at(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open ``name`` in ``dir_fd`` for reading if it is a regular file.

    Never blocks: the type is checked with ``lstat`` before the open (so no
    device is opened at all) and with ``fstat`` after it (so a swap in
    between is caught).  Returns the descriptor, which the caller closes.
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularError(f"not a regular file ({file_kind(st.st_mode)})")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a symlink meanwhile
            raise NotRegularError("not a regular file (a symlink)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularError(f"not a regular file ({file_kind(st.st_mode)})")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


class SiteDir:
    """One site directory, opened once; see the module's docstring.

    Paths given to the methods are relative, ``/``-separated, and never
    start with ``/``.  Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
        # Absolute symlinks naming a path below one of these stay inside.
        self._prefixes = tuple(dict.fromkeys((self.path, os.path.realpath(self.path))))
        self._dirs: dict[str, int] = {}  # least recently used first

    def close(self) -> None:
        """Close every descriptor (idempotent)."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SiteDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def abspath(self, rel: str) -> str:
        """The absolute path of ``rel`` (for messages and reports only)."""
        return os.path.join(self.path, *rel.split("/")) if rel else self.path

    # -- directories ----------------------------------------------------

    def open_dir(self, rel_dir: str) -> int:
        """A new descriptor of the directory ``rel_dir`` ("" is the site
        directory); the caller closes it.

        A component that is a symlink is followed only while it stays
        inside: :class:`OutsideError` otherwise.  ``NotADirectoryError``,
        ``FileNotFoundError``, ... as the kernel says.
        """
        todo = [p for p in reversed(rel_dir.split("/")) if p not in ("", ".")]
        fds = [self.fd]  # fds[0] is not ours to close
        hops = 0
        try:
            while todo:
                name = todo.pop()
                if name == "..":
                    if len(fds) == 1:
                        raise OutsideError(f"{rel_dir!r} climbs out of the site directory; not followed")
                    os.close(fds.pop())
                    continue
                try:
                    fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        exc.filename = self.abspath(rel_dir)
                        raise
                st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), self.abspath(rel_dir))
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self.abspath(rel_dir))
                target = os.readlink(name, dir_fd=fds[-1])
                if target.startswith("/"):
                    inner = self._below(target)
                    if inner is None:
                        raise OutsideError(f"{name!r} is a symlink to {target!r}, outside the site directory")
                    while len(fds) > 1:
                        os.close(fds.pop())
                    target = inner
                todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
            return os.dup(self.fd) if len(fds) == 1 else fds.pop()
        finally:
            for fd in fds[1:]:
                os.close(fd)

    def _below(self, target: str) -> Optional[str]:
        norm = os.path.normpath(target)
        for prefix in self._prefixes:
            if norm == prefix:
                return ""
            if norm.startswith(prefix.rstrip("/") + "/"):
                return norm[len(prefix.rstrip("/")) + 1 :]
        return None

    def _dir(self, rel_dir: str) -> int:
        """A cached descriptor of ``rel_dir``: valid until the next call."""
        if not rel_dir:
            return self.fd
        fd = self._dirs.get(rel_dir)
        if fd is not None:
            del self._dirs[rel_dir]
            self._dirs[rel_dir] = fd  # now the most recently used
            return fd
        fd = self.open_dir(rel_dir)
        self._dirs[rel_dir] = fd
        if len(self._dirs) > _CACHE:
            os.close(self._dirs.pop(next(iter(self._dirs))))
        return fd

    def forget(self) -> None:
        """Drop the cached directory descriptors (the next use walks again)."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def listdir(self, rel_dir: str = "") -> list[str]:
        """The names in ``rel_dir``, sorted."""
        return sorted(os.listdir(self._dir(rel_dir)))

    def walk(self, suffix: str, skip_dirs: tuple[str, ...] = ()) -> Iterator[str]:
        """Every non-directory whose name ends with ``suffix``, as a relative
        path, sorted; directories named in or ending with ``skip_dirs`` are
        not entered, nor any directory symlink (what ``os.fwalk`` with
        ``follow_symlinks=False`` walks, at a third of its system calls)."""
        return _walk(self.fd, "", suffix, skip_dirs)

    # -- files ----------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result:
        """``lstat`` of ``rel`` (its last component is not followed)."""
        head, name = split(rel)
        return os.stat(name, dir_fd=self._dir(head), follow_symlinks=False)

    def stat(self, rel: str) -> os.stat_result:
        """``stat`` of ``rel``: its directories stay inside; a last
        component that is a symlink is followed (for reading only: uv's
        symlink mode links installed files into its cache)."""
        head, name = split(rel)
        return os.stat(name, dir_fd=self._dir(head), follow_symlinks=True)

    def readlink(self, rel: str) -> str:
        head, name = split(rel)
        return os.readlink(name, dir_fd=self._dir(head))

    def read(self, rel: str, limit: int) -> tuple[bytes, os.stat_result]:
        """The bytes of the regular file ``rel`` (a symlink is not a regular
        file here) and its ``fstat``; :class:`NotRegularError` for anything
        else or for a file larger than ``limit`` bytes."""
        head, name = split(rel)
        fd, st = open_regular_at(self._dir(head), name)
        try:
            if st.st_size > limit:
                raise NotRegularError(f"larger than {limit} bytes")
            chunks = []
            total = 0
            while True:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise NotRegularError(f"larger than {limit} bytes")
            return b"".join(chunks), st
        finally:
            os.close(fd)

    def symlink(self, target: str, rel: str) -> None:
        """Create the symlink ``rel -> target``; ``FileExistsError`` if the
        name is taken by anything (nothing is ever replaced)."""
        head, name = split(rel)
        os.symlink(target, name, dir_fd=self._dir(head))

    def unlink_symlink(self, rel: str, target: str) -> bool:
        """Remove ``rel`` if it is a symlink to exactly ``target``; False if
        it is anything else (then it is left alone); ``FileNotFoundError``
        if it is gone."""
        head, name = split(rel)
        fd = self._dir(head)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode) or os.readlink(name, dir_fd=fd) != target:
            return False
        os.unlink(name, dir_fd=fd)
        return True

    def replace_file(self, rel: str, data: bytes, tmp_name: str) -> None:
        """Write ``data`` to a new file ``tmp_name`` beside ``rel``
        (``O_EXCL | O_NOFOLLOW``, mode 0644) and rename it over ``rel``."""
        head, name = split(rel)
        fd = self.open_dir(head)
        try:
            out = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=fd)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(out, view) :]
                finally:
                    os.close(out)
                os.rename(tmp_name, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                try:
                    os.unlink(tmp_name, dir_fd=fd)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)
