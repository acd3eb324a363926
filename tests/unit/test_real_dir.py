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
    assert builtin.resolves_inside(str(tmp_path), "/")  # the root has no separator to add


def test_resolves_inside_a_real_site_resolves_only_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site named by its real path is not resolved again for each path
    inside it; a path outside, or a site reached through a link, still is."""
    tree = _tree(tmp_path)
    real_site = os.path.realpath(tmp_path / "real" / "site-packages")
    linked_site = str(tmp_path / "link" / "site-packages")
    (tmp_path / "real" / "site-packages-old").mkdir()
    asked: list[str] = []
    real_dir = builtin.real_dir

    def counting(path: str) -> str:
        asked.append(path)
        return real_dir(path)

    monkeypatch.setattr(builtin, "real_dir", counting)
    cases = [
        (str(tree["plain"]), real_site, True, 1),
        (str(tree["via a linked parent"]), real_site, True, 1),
        (real_site, real_site, True, 1),
        (str(tree["plain"]), linked_site, True, 2),  # the site's own path is not real: resolved too
        (linked_site, linked_site, True, 2),
        (str(tree["a link out"]), real_site, False, 2),
        (str(tmp_path / "real" / "site-packages-old"), real_site, False, 2),  # a prefix, not a parent
        (str(tmp_path / "real"), real_site, False, 2),
        (str(tree["plain"]), real_site + "/", True, 2),  # not normalised: the slow way, same answer
    ]
    for path, site, inside, calls in cases:
        asked.clear()
        assert builtin.resolves_inside(path, site) is inside, (path, site)
        assert len(asked) == calls, (path, site, asked)
