"""sitefs.py on fake site directories in ``tmp_path``: kinds and messages,
size bounds of ``read`` (also for a file that grows or is swapped while it is
read), ``stat`` through a symlink, absolute symlinks naming the site directory,
``walk`` at the top level, and what ``replace_file`` leaves on disk.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from soabi_shim.errors import NotRegularError, OutsideError
from soabi_shim.sitefs import SiteDir, describe, file_kind, open_regular_at


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "pkg" / "sub").mkdir(parents=True)
    (site / "pkg" / "mod.py").write_bytes(b"x = 1\n")
    return site


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- file_kind, describe ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFBLK | 0o660, "a block device"),
        (stat.S_IFREG | 0o644, "a regular file"),
        (stat.S_IFCHR | 0o666, "a character device"),
        (stat.S_IFIFO | 0o600, "a FIFO"),
        (stat.S_IFSOCK | 0o755, "a socket"),
        (stat.S_IFLNK | 0o777, "a symlink"),
        (stat.S_IFDIR | 0o755, "a directory"),
        (0o644, "of an unknown type"),  # no file-type bits at all
    ],
)
def test_file_kind_names_every_type(mode: int, kind: str) -> None:
    assert file_kind(mode) == kind


def test_describe_any_error() -> None:
    assert describe(OSError("no strerror here")) == "no strerror here"
    assert describe(OSError(errno.EACCES, "Permission denied", "/x")) == "Permission denied"
    assert describe(ValueError("bad value")) == "ValueError: bad value"
    assert describe(KeyError("k")) == "KeyError: 'k'"


# -- abspath, open_dir ----------------------------------------------------


def test_abspath(site: Path) -> None:
    with SiteDir(str(site)) as fs:
        assert fs.abspath("") == str(site)
        assert fs.abspath("pkg/mod.py") == str(site / "pkg" / "mod.py")
        assert fs.abspath("pkg//mod.py") == str(site / "pkg" / "mod.py")
        assert fs.abspath("my pkg/a b.py") == os.path.join(str(site), "my pkg", "a b.py")


def test_open_dir_ignores_empty_and_dot_components(site: Path) -> None:
    (site / "pkg" / "sub" / "x.py").write_bytes(b"")
    with SiteDir(str(site)) as fs:
        for rel in ["", ".", "pkg//sub/", "./pkg/./sub", "pkg/sub/."]:
            fd = fs.open_dir(rel)
            try:
                expected = ["pkg"] if rel in ("", ".") else ["x.py"]
                assert sorted(os.listdir(fd)) == expected, rel
            finally:
                os.close(fd)
        assert fs.lstat("pkg//sub/x.py").st_size == 0
        assert fs.listdir("pkg//sub") == ["x.py"]


def test_dot_then_dotdot_climbs(site: Path) -> None:
    with SiteDir(str(site)) as fs:
        assert fs.listdir("pkg/./..") == ["pkg"]
        assert fs.listdir("pkg/sub/./../.") == ["mod.py", "sub"]
        with pytest.raises(OutsideError, match="climbs out of the site directory"):
            fs.open_dir("./..")
        with pytest.raises(OutsideError, match="climbs out of the site directory"):
            fs.open_dir("pkg/./../..")


def chain(site: Path, hops: int) -> str:
    """``l0 -> l1 -> ... -> pkg``: ``hops`` symlinks to follow from ``l0``."""
    for i in range(hops):
        (site / f"l{i}").symlink_to(f"l{i + 1}" if i + 1 < hops else "pkg")
    return "l0"


def test_forty_symlinks_are_followed(site: Path) -> None:
    start = chain(site, 40)
    with SiteDir(str(site)) as fs:
        assert fs.listdir(start) == ["mod.py", "sub"]


def test_forty_one_symlinks_are_a_loop(site: Path) -> None:
    start = chain(site, 41)
    with SiteDir(str(site)) as fs, pytest.raises(OSError) as info:
        fs.listdir(start)
    exc = info.value
    assert (exc.errno, exc.strerror, exc.filename) == (errno.ELOOP, os.strerror(errno.ELOOP), str(site / "l0"))
    assert describe(exc) == os.strerror(errno.ELOOP)


def test_relative_symlink_targets_with_dots_and_slashes(site: Path) -> None:
    (site / "pkg" / "sub" / "x.py").write_bytes(b"")
    (site / "pkg" / "slashes").symlink_to("sub//")
    (site / "pkg" / "dots").symlink_to("./../pkg/./sub")
    (site / "pkg" / "abs-dots").symlink_to(str(site) + "/./pkg/../pkg/sub/")
    (site / "up").symlink_to("./..")
    with SiteDir(str(site)) as fs:
        for rel in ["pkg/slashes", "pkg/dots", "pkg/abs-dots", "pkg/slashes/../sub"]:
            assert fs.listdir(rel) == ["x.py"], rel
        with pytest.raises(OutsideError, match="climbs out of the site directory"):
            fs.listdir("up")
        with pytest.raises(OutsideError, match="climbs out of the site directory"):
            fs.listdir("pkg/dots/../../..")


def test_open_dir_closes_what_it_walked(site: Path) -> None:
    (site / "pkg" / "sub" / "deep").mkdir()
    (site / "pkg" / "link").symlink_to(str(site / "pkg" / "sub"))
    before = open_fds()
    with SiteDir(str(site)) as fs:
        for rel in ["pkg/sub/deep", "pkg/link/deep", "pkg/sub/deep/../../sub"]:
            fd = fs.open_dir(rel)
            os.close(fd)
            assert open_fds() == before + 1, rel
        for rel in ["pkg/sub/deep/missing", "pkg/sub/deep/../../../.."]:
            with pytest.raises((FileNotFoundError, OutsideError)):
                fs.open_dir(rel)
            assert open_fds() == before + 1, rel
        assert fs.listdir() == ["pkg"]  # the site descriptor is still ours
    assert open_fds() == before


def test_open_dir_errors_name_the_whole_path(site: Path) -> None:
    with SiteDir(str(site)) as fs:
        with pytest.raises(FileNotFoundError) as missing:
            fs.open_dir("pkg/missing/deeper")
        assert missing.value.filename == str(site / "pkg" / "missing" / "deeper")
        with pytest.raises(NotADirectoryError) as notdir:
            fs.lstat("pkg/mod.py/x")
        exc = notdir.value
        assert (exc.errno, exc.strerror, exc.filename) == (
            errno.ENOTDIR,
            os.strerror(errno.ENOTDIR),
            str(site / "pkg" / "mod.py"),
        )
        assert describe(exc) == os.strerror(errno.ENOTDIR)
        with pytest.raises(NotADirectoryError) as notdir:
            fs.open_dir("pkg/mod.py")
        assert notdir.value.filename == str(site / "pkg" / "mod.py")


# -- _below: absolute symlinks ----------------------------------------------


def test_absolute_symlink_to_the_site_directory_itself(site: Path) -> None:
    (site / "pkg" / "top").symlink_to(site)
    (site / "pkg" / "top2").symlink_to(str(site) + "/")
    with SiteDir(str(site)) as fs:
        assert fs.listdir("pkg/top") == ["pkg"]
        assert fs.listdir("pkg/top2") == ["pkg"]
        assert fs.read("pkg/top/pkg/mod.py", 100)[0] == b"x = 1\n"


@pytest.mark.parametrize("name", ["site ", "siteX", "site/"])
def test_absolute_symlink_prefix_is_matched_exactly(tmp_path: Path, name: str) -> None:
    """The site path is compared as text: its last character counts, and a
    sibling whose name is a prefix of it is outside."""
    here = tmp_path / name.rstrip("/")
    (here / "pkg").mkdir(parents=True)
    (here / "pkg" / "mod.py").write_bytes(b"inside")
    sibling = tmp_path / "sit"
    sibling.mkdir()
    (sibling / "secret").write_bytes(b"secret")
    (here / "in").symlink_to(str(here / "pkg"))
    (here / "out").symlink_to(str(sibling))
    with SiteDir(str(tmp_path) + "/" + name) as fs:
        assert fs.read("in/mod.py", 100)[0] == b"inside"
        with pytest.raises(OutsideError, match="outside the site directory"):
            fs.read("out/secret", 100)


@pytest.mark.parametrize("name", ["site ", "siteX"])
def test_absolute_symlink_into_a_sibling_named_like_a_prefix_is_outside(tmp_path: Path, name: str) -> None:
    site = tmp_path / name.rstrip("/")
    (site / "lib").mkdir(parents=True)
    other = tmp_path / "site"
    other.mkdir(exist_ok=True)
    (other / "lib").mkdir(exist_ok=True)
    (other / "lib" / "secret").write_bytes(b"secret")
    (site / "evil").symlink_to(other / "lib")
    with SiteDir(str(tmp_path) + "/" + name) as fs, pytest.raises(OutsideError, match="outside the site directory"):
        fs.read("evil/secret", 100)


# -- walk ---------------------------------------------------------------------


def test_walk_top_level_files_have_no_prefix(site: Path) -> None:
    (site / "top.so").write_bytes(b"")
    (site / "pkg" / "a.so").write_bytes(b"")
    (site / ".so").write_bytes(b"")
    with SiteDir(str(site)) as fs:
        assert list(fs.walk(".so")) == [".so", "top.so", "pkg/a.so"]  # a directory's files first


# -- stat / lstat -------------------------------------------------------------


def test_stat_follows_a_last_symlink_lstat_does_not(site: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "cache" / "blob"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"0123456789")
    (site / "pkg" / "linked.py").symlink_to(elsewhere)  # uv's symlink mode
    (site / "pkg" / "rel.py").symlink_to("mod.py")
    with SiteDir(str(site)) as fs:
        st = fs.stat("pkg/linked.py")
        assert stat.S_ISREG(st.st_mode) and st.st_size == 10
        st = fs.stat("pkg/rel.py")
        assert stat.S_ISREG(st.st_mode) and st.st_size == 6
        assert stat.S_ISLNK(fs.lstat("pkg/rel.py").st_mode)
        assert stat.S_ISDIR(fs.stat("pkg/sub").st_mode)
        assert fs.stat("pkg/mod.py").st_size == 6
        with pytest.raises(FileNotFoundError):
            fs.stat("pkg/missing.py")
        with pytest.raises(FileNotFoundError):
            fs.stat("linked.py")  # not at the top
    (site / "pkg" / "rel.py").unlink()
    (site / "pkg" / "rel.py").symlink_to("nowhere")
    with SiteDir(str(site)) as fs:
        with pytest.raises(FileNotFoundError):
            fs.stat("pkg/rel.py")
        assert stat.S_ISLNK(fs.lstat("pkg/rel.py").st_mode)


def test_stat_directories_stay_inside(site: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_bytes(b"")
    (site / "evil").symlink_to(tmp_path / "outside")
    with SiteDir(str(site)) as fs, pytest.raises(OutsideError):
        fs.stat("evil/f")


# -- read: bounds -------------------------------------------------------------


def test_read_exactly_the_limit(site: Path) -> None:
    with SiteDir(str(site)) as fs:
        assert fs.read("pkg/mod.py", 6)[0] == b"x = 1\n"
        with pytest.raises(NotRegularError, match=r"^larger than 5 bytes$"):
            fs.read("pkg/mod.py", 5)


def test_read_empty_file_with_limit_zero(site: Path) -> None:
    (site / "pkg" / "empty").write_bytes(b"")
    (site / "pkg" / "one").write_bytes(b"1")
    with SiteDir(str(site)) as fs:
        data, st = fs.read("pkg/empty", 0)
        assert data == b"" and st.st_size == 0
        with pytest.raises(NotRegularError, match="larger than 0 bytes"):
            fs.read("pkg/one", 0)


def test_read_large_file_in_several_chunks(site: Path) -> None:
    blob = bytes(range(256)) * (3 * 4096 + 7)  # > 3 MiB
    (site / "pkg" / "big").write_bytes(blob)
    with SiteDir(str(site)) as fs:
        assert fs.read("pkg/big", len(blob))[0] == blob
        with pytest.raises(NotRegularError, match=f"larger than {len(blob) - 1} bytes"):
            fs.read("pkg/big", len(blob) - 1)


def grow_on_read(monkeypatch: pytest.MonkeyPatch, path: Path, at_call: int, extra: bytes) -> None:
    """Append ``extra`` to ``path`` just before the ``at_call``-th ``os.read``:
    a writer that is still at work after ``fstat``."""
    real_read: Callable[[int, int], bytes] = os.read
    calls = [0]

    def read(fd: int, n: int) -> bytes:
        calls[0] += 1
        if calls[0] == at_call:
            with open(path, "ab") as f:
                f.write(extra)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)


@pytest.mark.parametrize("at_call", [1, 2])
def test_read_file_that_grows_past_the_limit(site: Path, monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    path = site / "pkg" / "mod.py"
    before = open_fds()
    grow_on_read(monkeypatch, path, at_call, b"#" * 100)
    with SiteDir(str(site)) as fs, pytest.raises(NotRegularError, match=r"^larger than 10 bytes$"):
        fs.read("pkg/mod.py", 10)
    monkeypatch.undo()
    assert open_fds() == before


def test_read_file_that_grows_within_the_limit(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site / "pkg" / "mod.py"
    grow_on_read(monkeypatch, path, 2, b"y = 2\n")
    with SiteDir(str(site)) as fs:
        data, st = fs.read("pkg/mod.py", 12)
    assert data == b"x = 1\ny = 2\n" and st.st_size == 6  # the fstat before the growth


# -- read / open_regular_at: swapped between lstat and open ---------------------


def swap_before_open(monkeypatch: pytest.MonkeyPatch, name: str, swap: Callable[[], None]) -> None:
    real_open = os.open

    def fake_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if path == name:
            swap()
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)


def test_read_file_swapped_for_a_symlink(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site / "pkg" / "mod.py"
    (tmp_path / "kmsg").write_bytes(b"secret")

    def swap() -> None:
        path.unlink()
        path.symlink_to(tmp_path / "kmsg")

    before = open_fds()
    with SiteDir(str(site)) as fs:
        fs.listdir("pkg")  # the directory descriptor is opened before the swap
        swap_before_open(monkeypatch, "mod.py", swap)
        with pytest.raises(NotRegularError, match=r"^not a regular file \(a symlink\)$") as info:
            fs.read("pkg/mod.py", 100)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        monkeypatch.undo()
    assert open_fds() == before


def test_read_file_swapped_for_a_fifo(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site / "pkg" / "mod.py"

    def swap() -> None:
        path.unlink()
        os.mkfifo(path)

    before = open_fds()
    with SiteDir(str(site)) as fs:
        fs.listdir("pkg")
        swap_before_open(monkeypatch, "mod.py", swap)
        with pytest.raises(NotRegularError, match=r"^not a regular file \(a FIFO\)$"):
            fs.read("pkg/mod.py", 100)
        monkeypatch.undo()
    assert open_fds() == before  # the descriptor of the FIFO was closed


def test_open_regular_at_other_errors_pass_through(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site / "pkg" / "mod.py"

    def swap() -> None:
        path.unlink()  # vanished between lstat and open

    fd = os.open(site / "pkg", os.O_RDONLY)
    try:
        swap_before_open(monkeypatch, "mod.py", swap)
        with pytest.raises(FileNotFoundError):
            open_regular_at(fd, "mod.py")
        monkeypatch.undo()
        (site / "pkg" / "mod.py").write_bytes(b"abc")
        got, st = open_regular_at(fd, "mod.py")
        try:
            assert os.read(got, 10) == b"abc" and st.st_size == 3
        finally:
            os.close(got)
        with pytest.raises(NotRegularError, match=r"^not a regular file \(a directory\)$"):
            open_regular_at(fd, "sub")
    finally:
        os.close(fd)


# -- replace_file ---------------------------------------------------------------


def test_replace_file_mode_is_0644(site: Path) -> None:
    old = os.umask(0o022)
    try:
        with SiteDir(str(site)) as fs:
            fs.replace_file("pkg/stamp", b"1", ".tmp-stamp")
            fs.replace_file("pkg/mod.py", b"y = 2\n", ".tmp-mod")
    finally:
        os.umask(old)
    assert stat.S_IMODE((site / "pkg" / "stamp").stat().st_mode) == 0o644
    assert stat.S_IMODE((site / "pkg" / "mod.py").stat().st_mode) == 0o644
    assert (site / "pkg" / "mod.py").read_bytes() == b"y = 2\n"


def test_replace_file_failed_rename_leaves_no_temp(site: Path) -> None:
    (site / "pkg" / "sub" / "keep").write_bytes(b"")
    with SiteDir(str(site)) as fs, pytest.raises(IsADirectoryError):
        fs.replace_file("pkg/sub", b"data", ".tmp-sub")
    assert sorted(os.listdir(site / "pkg")) == ["mod.py", "sub"]
    assert os.listdir(site / "pkg" / "sub") == ["keep"]


def test_replace_file_failed_rename_at_top_leaves_no_temp(site: Path) -> None:
    with SiteDir(str(site)) as fs, pytest.raises(IsADirectoryError):
        fs.replace_file("pkg", b"data", ".tmp-pkg")
    assert os.listdir(site) == ["pkg"]


# -- __init__, close, the descriptor cache ------------------------------------


def test_site_dir_must_be_a_directory(site: Path) -> None:
    with pytest.raises(NotADirectoryError):
        SiteDir(str(site / "pkg" / "mod.py"))
    with pytest.raises(FileNotFoundError):
        SiteDir(str(site / "missing"))


def test_site_dir_reached_through_a_symlink(tmp_path: Path, site: Path) -> None:
    (tmp_path / "lib64").symlink_to("site")
    (site / "via-real").symlink_to(site / "pkg")
    (site / "via-link").symlink_to(tmp_path / "lib64" / "pkg")
    with SiteDir(str(tmp_path / "lib64")) as fs:
        assert fs.path == str(tmp_path / "lib64")
        assert fs.listdir("via-real") == ["mod.py", "sub"]
        assert fs.listdir("via-link") == ["mod.py", "sub"]


def test_close_is_idempotent_and_releases_everything(site: Path) -> None:
    before = open_fds()
    fs = SiteDir(str(site))
    fs.listdir("pkg")
    fs.listdir("pkg")
    fs.listdir("pkg/sub")
    fs.read("pkg/mod.py", 100)
    assert open_fds() == before + 3  # the site directory, pkg, pkg/sub
    fs.close()
    assert fs.fd == -1
    assert open_fds() == before
    fs.close()
    assert fs.fd == -1
    assert open_fds() == before


def test_close_releases_descriptor_zero(site: Path) -> None:
    """Started with stdin closed, the site directory gets descriptor 0."""
    saved = os.dup(0)
    try:
        os.close(0)
        fs = SiteDir(str(site))
        assert fs.fd == 0
        assert fs.listdir() == ["pkg"]
        fs.close()
        with pytest.raises(OSError) as info:
            os.fstat(0)
        assert info.value.errno == errno.EBADF
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_cache_keeps_64_directories_least_recently_used_out(site: Path) -> None:
    """A cached directory is reached through its descriptor (so a rename
    goes unnoticed) until it falls out of the cache or ``forget``."""
    for i in range(66):
        (site / f"d{i}").mkdir()
        (site / f"d{i}" / f"f{i}").write_bytes(b"")
    with SiteDir(str(site)) as fs:
        for i in range(64):
            assert fs.listdir(f"d{i}") == [f"f{i}"]
        (site / "d0").rename(site / "moved0")
        assert fs.listdir("d0") == ["f0"]  # still cached: 64 fit, and now the most recent
        fs.listdir("d64")  # pushes out d1, the least recently used
        (site / "d1").rename(site / "moved1")
        (site / "d2").rename(site / "moved2")
        assert fs.listdir("d0") == ["f0"]
        assert fs.listdir("d2") == ["f2"]
        with pytest.raises(FileNotFoundError):
            fs.listdir("d1")
        fs.forget()
        with pytest.raises(FileNotFoundError):
            fs.listdir("d0")
        assert fs.listdir("moved0") == ["f0"]


def _fwalk_reference(fd: int, suffix: str, skip_dirs: tuple[str, ...]) -> list[str]:
    """What walk gave when it was os.fwalk (follow_symlinks=False)."""
    out = []
    for top, dirs, files, _fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.endswith(skip_dirs))
        head = "" if top == "." else top[2:] + "/"
        out.extend(head + name for name in sorted(files) if name.endswith(suffix))
    return out


def test_walk_answers_as_fwalk_did(site: Path, tmp_path: Path) -> None:
    """Files in sorted order, a directory's own files before its
    subdirectories'; symlinks to files listed, symlinks to directories
    (inside or out) never entered, dangling symlinks listed, skipped
    directories (by name or suffix) not entered, FIFOs listed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.so").write_bytes(b"x")
    for rel in ("b.so", "a.so", "a.txt", "z/y.so", "z/x/deep.so", "m/n.so", "p-1.dist-info/r.so",
                "__pycache__/c.so", "pkg/__pycache__/c.so", "pkg/m.so", "pkg.so/inner.so"):  # fmt: skip
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.symlink("z", site / "link-to-dir.so")
    os.symlink("z", site / "linkdir")
    os.symlink(str(outside), site / "out")
    os.symlink("a.so", site / "link-to-file.so")
    os.symlink("missing", site / "dangling.so")
    os.symlink("loop.so", site / "loop.so")  # is_dir() raises ELOOP
    os.mkfifo(site / "pkg" / "fifo.so")
    with SiteDir(str(site)) as fs:
        fds = len(os.listdir("/proc/self/fd"))
        for suffix, skip in ((".so", (".dist-info", "__pycache__")), (".so", ()), ("", ("z",)), (".txt", ())):
            got = list(fs.walk(suffix, skip))
            assert got == _fwalk_reference(fs.fd, suffix, skip)
        assert list(fs.walk(".so", (".dist-info", "__pycache__"))) == [
            "a.so", "b.so", "dangling.so", "link-to-file.so", "loop.so",
            "m/n.so", "pkg/fifo.so", "pkg/m.so", "pkg.so/inner.so", "z/y.so", "z/x/deep.so",
        ]  # fmt: skip
        assert list(fs.walk(".so")) == list(fs.walk(".so"))  # the site's descriptor is left rewound
        assert len(os.listdir("/proc/self/fd")) == fds  # every directory it opened is closed


def test_walk_skips_a_directory_that_went_away(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (site / "a").mkdir()
    (site / "a" / "x.so").write_bytes(b"")
    (site / "b").mkdir()
    (site / "b" / "y.so").write_bytes(b"")
    real_open = os.open

    def racing_open(name: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if name == "a":
            raise FileNotFoundError(2, "gone")
        return real_open(name, flags, mode, dir_fd=dir_fd)

    with SiteDir(str(site)) as fs:
        monkeypatch.setattr(os, "open", racing_open)
        assert list(fs.walk(".so")) == ["b/y.so"]
