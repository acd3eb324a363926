"""Every installer's result heals the same way: uv (hardlink and symlink
modes, whose cache must never be written), ``python -m installer``, the
user site, and a venv with ``--system-site-packages``."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, Venv, make_venv, soabi_shim


def tree_digest(root: Path) -> dict[str, str]:
    """Content and link targets of every file under ``root`` (uv's cache)."""
    out = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                out[str(p)] = "->" + os.readlink(p)
            else:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() + f":{p.stat().st_nlink > 0}"
    return out


def recorded(site: Path, rel: str, dist: str = "demo-1.0") -> bool:
    with open(site / f"{dist}.dist-info" / "RECORD", newline="") as f:
        return [rel, "", ""] in list(csv.reader(f))


@pytest.mark.parametrize("link_mode", ["hardlink", "symlink", "copy"])
def test_uv_pip_install(tmp_path: Path, venv: Venv, demo_wheel: Path, link_mode: str) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is a test dependency (pip install -e '.[test]')"
    cache = tmp_path / "uv-cache"
    env = dict(os.environ, UV_CACHE_DIR=str(cache), UV_NO_PROGRESS="1")
    out = subprocess.run(
        [uv, "pip", "install", "--python", str(venv.python), "--link-mode", link_mode, str(demo_wheel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    real = venv.site / "demo" / f"_speed{MUSL_SUFFIX}"
    if link_mode == "symlink":
        assert real.is_symlink()  # a link into uv's cache: read through, never written
    before = tree_digest(cache)
    heal = soabi_shim("heal", str(venv.site))
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert tree_digest(cache) == before, "uv's cache was modified"
    alias = venv.site / "demo" / f"_speed{EXT_SUFFIX}"
    assert alias.is_symlink() and recorded(venv.site, f"demo/_speed{EXT_SUFFIX}")
    assert venv.run("import demo._speed as m; print(m.add(2, 2))").stdout == "4\n"
    uninstall = [uv, "pip", "uninstall", "--python", str(venv.python), "demo"]
    un = subprocess.run(uninstall, capture_output=True, text=True, env=env, check=False)
    assert un.returncode == 0, un.stderr
    assert not alias.is_symlink() and not (venv.site / "demo").exists()
    assert tree_digest(cache) == before


def test_python_m_installer(venv: Venv, demo_wheel: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "installer", "--prefix", str(venv.root), str(demo_wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert soabi_shim("heal", "--python", str(venv.python)).returncode == 0
    assert recorded(venv.site, f"demo/_speed{EXT_SUFFIX}")
    assert venv.run("import demo._speed").returncode == 0


def test_user_site(tmp_path: Path, demo_wheel: Path) -> None:
    env = dict(os.environ, PYTHONUSERBASE=str(tmp_path / "userbase"), PYTHONPATH=str(ROOT))
    env.pop("PYTHONNOUSERSITE", None)
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--user", "--no-warn-script-location", str(demo_wheel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    user_site = Path(
        subprocess.run(
            [sys.executable, "-c", "import site; print(site.getusersitepackages())"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.strip()
    )
    heal = subprocess.run(
        [sys.executable, "-m", "soabi_shim", "heal"], capture_output=True, text=True, env=env, check=False
    )
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert "created" in heal.stdout
    assert (user_site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    assert recorded(user_site, f"demo/_speed{EXT_SUFFIX}")


def test_system_site_packages_venv(tmp_path: Path, demo_wheel: Path) -> None:
    """A venv that also sees the base interpreter's site-packages: heal works on the
    venv's own site dir and leaves the base interpreter's alone."""
    import json

    v = make_venv(tmp_path / "venv", "--system-site-packages")
    v.pip("install", str(demo_wheel))
    out = soabi_shim("heal", "--json", "--python", str(v.python))
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert [Path(s).resolve() for s in report["sites"]] == [v.site.resolve()]
    assert [a["action"] for a in report["aliases"]] == ["created"]
    assert v.run("import demo._speed").returncode == 0
