"""``soabi_shim.sitefs``: containment by construction, regular files only."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from soabi_shim.errors import NotRegularError, OutsideError, SiteError, SoabiShimError
from soabi_shim.sitefs import SiteDir, describe, file_kind, split


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "site"
    (site / "pkg" / "sub").mkdir(parents=True)
    (site / "pkg" / "mod.py").write_bytes(b"x = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    return site, outside


def test_split() -> None:
    assert split("a/b/c.so") == ("a/b", "c.so")
    assert split("c.so") == ("", "c.so")


def test_errors_are_ours() -> None:
    assert issubclass(OutsideError, SiteError) and issubclass(NotRegularError, SiteError)
    assert issubclass(SiteError, SoabiShimError)
    assert describe(OutsideError("x")) == "x"
    assert describe(FileNotFoundError(errno.ENOENT, "No such file or directory")) == "No such file or directory"


def test_read_regular(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    with SiteDir(str(site)) as fs:
        data, st = fs.read("pkg/mod.py", 100)
        assert data == b"x = 1\n" and st.st_size == 6
        with pytest.raises(NotRegularError, match="larger than 3 bytes"):
            fs.read("pkg/mod.py", 3)
        with pytest.raises(FileNotFoundError):
            fs.read("pkg/missing.py", 100)


def test_read_refuses_special_files_without_blocking(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    os.mkfifo(site / "pkg" / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(site / "pkg" / "sock"))
    (site / "pkg" / "kmsg").symlink_to("/proc/kmsg")
    (site / "pkg" / "zero").symlink_to("/dev/zero")
    (site / "pkg" / "link").symlink_to("mod.py")
    try:
        with SiteDir(str(site)) as fs:
            for name, kind in [
                ("fifo", "a FIFO"),
                ("sock", "a socket"),
                ("kmsg", "a symlink"),
                ("zero", "a symlink"),
                ("link", "a symlink"),
                ("sub", "a directory"),
            ]:
                with pytest.raises(NotRegularError, match=f"not a regular file \\({kind}\\)"):
                    fs.read(f"pkg/{name}", 1 << 20)
    finally:
        sock.close()


def test_file_kind() -> None:
    assert file_kind(os.stat("/dev/null").st_mode) == "a character device"
    assert file_kind(os.stat("/").st_mode) == "a directory"


def test_symlinked_directory_inside_is_followed(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    (site / "rel").symlink_to("pkg")
    (site / "abs").symlink_to(site / "pkg")
    (site / "pkg" / "up").symlink_to("../pkg/sub")
    with SiteDir(str(site)) as fs:
        assert fs.read("rel/mod.py", 100)[0] == b"x = 1\n"
        assert fs.read("abs/mod.py", 100)[0] == b"x = 1\n"
        fs.symlink("./mod.py", "rel/alias.py")
        assert fs.listdir("pkg/up") == []
    assert os.readlink(site / "pkg" / "alias.py") == "./mod.py"


@pytest.mark.parametrize("how", ["absolute", "relative", "climb", "chain"])
def test_outside_is_unreachable(tree: tuple[Path, Path], how: str) -> None:
    site, outside = tree
    if how == "absolute":
        (site / "evil").symlink_to(outside)
    elif how == "relative":
        (site / "evil").symlink_to("../outside")
    elif how == "climb":
        (site / "pkg" / "evil").symlink_to("../../outside")
        (site / "evil").symlink_to("pkg/evil")
    else:
        (site / "hop").symlink_to(outside)
        (site / "evil").symlink_to("hop")
    before = sorted(os.listdir(outside))
    with SiteDir(str(site)) as fs:
        with pytest.raises(OutsideError, match=r"outside the site directory|climbs out"):
            fs.read("evil/secret", 100)
        with pytest.raises(OutsideError):
            fs.symlink("./secret", "evil/alias")
        with pytest.raises(OutsideError):
            fs.lstat("evil/secret")
        with pytest.raises(OutsideError):
            fs.listdir("evil")
        with pytest.raises(OutsideError):
            fs.open_dir("..")
    assert sorted(os.listdir(outside)) == before


def test_symlink_loop(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    (site / "a").symlink_to("b")
    (site / "b").symlink_to("a")
    with SiteDir(str(site)) as fs, pytest.raises(OSError) as info:
        fs.listdir("a")
    assert info.value.errno == errno.ELOOP


def test_file_component_is_not_a_directory(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    with SiteDir(str(site)) as fs, pytest.raises(NotADirectoryError):
        fs.lstat("pkg/mod.py/x")


def test_symlink_never_replaces(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    with SiteDir(str(site)) as fs:
        with pytest.raises(FileExistsError):
            fs.symlink("./x", "pkg/mod.py")
        fs.symlink("./mod.py", "pkg/alias.py")
        with pytest.raises(FileExistsError):
            fs.symlink("./mod.py", "pkg/alias.py")
    assert (site / "pkg" / "mod.py").read_bytes() == b"x = 1\n"


def test_unlink_symlink_only_exact_target(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    (site / "pkg" / "ours").symlink_to("./mod.py")
    (site / "pkg" / "theirs").symlink_to("mod.py")
    with SiteDir(str(site)) as fs:
        assert not fs.unlink_symlink("pkg/mod.py", "./mod.py")  # a regular file: left alone
        assert not fs.unlink_symlink("pkg/theirs", "./mod.py")
        assert fs.unlink_symlink("pkg/ours", "./mod.py")
        with pytest.raises(FileNotFoundError):
            fs.unlink_symlink("pkg/ours", "./mod.py")
    assert sorted(os.listdir(site / "pkg")) == ["mod.py", "sub", "theirs"]


def test_walk_stays_inside(tree: tuple[Path, Path]) -> None:
    site, outside = tree
    (outside / "x.so").write_bytes(b"")
    (site / "pkg" / "a.so").write_bytes(b"")
    (site / "pkg" / "sub" / "b.so").write_bytes(b"")
    (site / "pkg-1.0.dist-info").mkdir()
    (site / "pkg-1.0.dist-info" / "c.so").write_bytes(b"")
    (site / "evil").symlink_to(outside)
    (site / "pkg" / "dangling.so").symlink_to("nowhere.so")
    with SiteDir(str(site)) as fs:
        assert list(fs.walk(".so", (".dist-info", "__pycache__"))) == ["pkg/a.so", "pkg/dangling.so", "pkg/sub/b.so"]


def test_replace_file_does_not_follow_a_planted_temp(tree: tuple[Path, Path]) -> None:
    site, outside = tree
    (site / "pkg" / "tmp").symlink_to(outside / "secret")
    with SiteDir(str(site)) as fs:
        with pytest.raises(FileExistsError):
            fs.replace_file("pkg/stamp", b"1", "tmp")
        fs.replace_file("pkg/stamp", b"2", "tmp2")
    assert (outside / "secret").read_bytes() == b"secret"
    assert (site / "pkg" / "stamp").read_bytes() == b"2"
    assert not (site / "pkg" / "tmp2").exists()


def test_descriptor_cache_is_bounded(tree: tuple[Path, Path]) -> None:
    site, _ = tree
    for i in range(200):
        (site / f"d{i}").mkdir()
    before = len(os.listdir("/proc/self/fd"))
    with SiteDir(str(site)) as fs:
        for i in range(200):
            fs.listdir(f"d{i}")
        assert len(os.listdir("/proc/self/fd")) - before <= 70
    assert len(os.listdir("/proc/self/fd")) == before
