"""builtin.real_dir: the kernel's answer, equal to os.path.realpath for directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soabi_shim import builtin


def _tree(tmp_path: Path) -> dict[str, Path]:
    real = tmp_path / "real" / "site-packages"
    (real / "pkg").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (real / "escape").symlink_to(tmp_path / "outside")
    (real / "file.so").write_bytes(b"")
    return {
        "plain": real / "pkg",
        "via a linked parent": tmp_path / "link" / "site-packages" / "pkg",
        "a link out": real / "escape",
        "with ..": real / "pkg" / ".." / "pkg",
        "a file": real / "file.so",
        "absent": real / "absent",
        "relative": Path(os.path.relpath(real / "pkg")),
    }


@pytest.mark.parametrize("broken_proc", [False, True])
def test_real_dir_is_realpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_proc: bool) -> None:
    if broken_proc:  # /proc not mounted (a chroot, a minimal container)
        monkeypatch.setattr(builtin, "PROC_FD", str(tmp_path / "no-proc") + "/")
    for what, path in _tree(tmp_path).items():
        assert builtin.real_dir(str(path)) == os.path.realpath(path), what


def test_real_dir_of_a_removed_directory_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    fake = tmp_path / "fake-proc"
    fake.mkdir()
    for fd in range(1024):  # what /proc shows for a descriptor of a removed directory
        (fake / str(fd)).symlink_to(f"{gone} (deleted)")
    monkeypatch.setattr(builtin, "PROC_FD", f"{fake}/")
    assert builtin.real_dir(str(gone)) == os.path.realpath(gone)
    (fake / "x").mkdir()
    for fd in range(1024):  # a relative answer is not trusted either
        (fake / str(fd)).unlink()
        (fake / str(fd)).symlink_to("x")
    assert builtin.real_dir(str(gone)) == os.path.realpath(gone)


def test_resolves_inside(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    site = str(tmp_path / "link" / "site-packages")  # the site itself reached through a link
    assert builtin.resolves_inside(str(tree["plain"]), site)
    assert builtin.resolves_inside(site, site)
    assert not builtin.resolves_inside(str(tree["a link out"]), site)
    assert not builtin.resolves_inside(str(tmp_path / "real" / "site-packages-old"), site)  # a prefix, not a parent
    assert not builtin.resolves_inside(str(tmp_path / "real"), site)
