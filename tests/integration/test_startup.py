"""The start-up hook and import fallback, on this glibc machine.

On glibc the ``.pth`` line must do nothing visible and import nothing; the
hook's musl behaviour runs for real in ``tests/e2e``.  Here its pieces are
driven directly: :func:`start` (the slow path), the stamp, and the fallback
path hook (which on glibc serves ``-musl`` twins of glibc-linked files).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from soabi_shim._startup import PTH_LINE, START_LINE
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, Venv, make_venv


def test_shipped_hook_files_match_source() -> None:
    assert (ROOT / "hook" / "soabi_shim-startup.pth").read_text() == PTH_LINE
    assert (ROOT / "hook" / "soabi_shim-startup.start").read_text() == START_LINE
    assert PTH_LINE.startswith("import ") and PTH_LINE.count("\n") == 1


@pytest.fixture
def shim_venv(tmp_path: Path, shim_wheel: Path, demo_wheel: Path) -> Venv:
    v = make_venv(tmp_path / "venv", "--system-site-packages")
    v.pip("install", "--no-deps", str(shim_wheel))
    assert (v.site / "soabi_shim-startup.pth").is_file()
    return v


HEAVY = ("typing", "pluggy", "packaging", "sysconfig", "importlib.metadata")
PROBE = f"import sys; print(sorted(m for m in sys.modules if 'soabi' in m or m in {HEAVY!r}))"


def test_glibc_startup_is_silent_and_imports_nothing(tmp_path: Path, shim_venv: Venv) -> None:
    plain = make_venv(tmp_path / "plain", "--system-site-packages")
    for flags in ((), ("-X", "dev"), ("-W", "error"), ("-v",)):
        a = shim_venv.run("pass", flags=flags)
        b = plain.run("pass", flags=flags)
        assert a.returncode == b.returncode == 0
        assert a.stdout == b.stdout
        if flags != ("-v",):  # -v lists paths, which differ between the venvs
            assert a.stderr == b.stderr
    assert shim_venv.run(PROBE).stdout == plain.run(PROBE).stdout
    assert "soabi" not in shim_venv.run(PROBE).stdout


def test_slow_path_heals_and_stamps(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    site = shim_venv.site
    code = f"import soabi_shim._startup as s; s.start({str(site)!r}, ''); print(s.FALLBACK_INSTALLED)"
    out = shim_venv.run(code)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout == "True\n"
    assert (site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    stamp = (site / "soabi_shim" / "_stamp").read_text()
    assert stamp == f"{os.stat(site).st_mtime_ns} 0"
    with open(next(site.glob("soabi_shim-*.dist-info")) / "RECORD", newline="") as f:
        assert ["soabi_shim/_stamp", "", ""] in list(csv.reader(f))
    # Unchanged site: the stamp matches and nothing is done, not even the fallback.
    again = shim_venv.run(
        f"import soabi_shim._startup as s; s.start({str(site)!r}, {stamp!r}); print(s.FALLBACK_INSTALLED)"
    )
    assert again.stdout == "False\n"
    # uninstalling soabi-shim removes the hook files and the stamp
    shim_venv.pip("uninstall", "-y", "soabi-shim")
    assert not (site / "soabi_shim-startup.pth").exists()
    assert not (site / "soabi_shim-startup.start").exists()
    assert not (site / "soabi_shim").exists()
    # the alias stays valid and goes away with its distribution
    assert shim_venv.run("import demo._speed").returncode == 0
    shim_venv.pip("uninstall", "-y", "demo")
    assert not (site / "demo").exists()


def test_fallback_only_env_writes_nothing(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    site = shim_venv.site
    env = dict(os.environ, SOABI_SHIM_FALLBACK_ONLY="1")
    code = f"import soabi_shim._startup as s; s.start({str(site)!r}, ''); import demo._speed as m; print(m.add(1, 2))"
    out = shim_venv.run(code, env=env)
    assert out.stdout == "3\n", out.stderr
    assert not (site / "demo" / f"_speed{EXT_SUFFIX}").exists()
    assert not (site / "soabi_shim" / "_stamp").exists()


def test_fallback_imports_twin_with_real_file_name(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    (shim_venv.site / "demo" / "_speed").mkdir()  # a same-named directory must not win
    code = (
        "import soabi_shim._startup as s; assert s.install_fallback()\n"
        "import demo._speed as m\n"
        "print(m.add(40, 2), m.__file__ == m.__spec__.origin, m.__file__.endswith('-linux-musl.so'))"
    )
    out = shim_venv.run(code)
    assert out.stdout == "42 True True\n", out.stderr
    assert not (shim_venv.site / "demo" / f"_speed{EXT_SUFFIX}").exists()  # the fallback writes nothing


def test_fallback_refuses_foreign_architecture(shim_venv: Venv, ext_dir: Path) -> None:
    import struct

    bad = bytearray((ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes())
    bad[18:20] = struct.pack("<H", 183)
    (shim_venv.site / "armmod").mkdir()
    (shim_venv.site / "armmod" / "__init__.py").write_text("")
    (shim_venv.site / "armmod" / f"_speed{MUSL_SUFFIX}").write_bytes(bytes(bad))
    code = (
        "import soabi_shim._startup as s; s.install_fallback()\n"
        "try:\n import armmod._speed\nexcept ImportError as e:\n print(e)\n"
    )
    out = shim_venv.run(code)
    assert "soabi-shim refused" in out.stdout and "ELF for aarch64 64-bit" in out.stdout, out.stdout + out.stderr


def test_disable_env_and_dash_S(shim_venv: Venv) -> None:
    # The .pth line is plain Python: run it as site would, with a fake musl check bypassed
    # by calling start() with DISABLE set for the .start entry point.
    env = dict(os.environ, SOABI_SHIM_DISABLE="1")
    out = shim_venv.run("import soabi_shim._startup as s; s.start(); print(s.FALLBACK_INSTALLED)", env=env)
    assert out.stdout == "False\n"
    out = shim_venv.run("import sys; print('soabi_shim._startup' in sys.modules)", flags=("-S",))
    assert out.stdout == "False\n"
