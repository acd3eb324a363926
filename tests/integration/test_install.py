"""``soabi-shim install``: pypa/installer with aliases made at install time."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, soabi_shim

PYVER = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def site_under(prefix: Path) -> Path:
    return Path(sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})["platlib"])


def rows(record: Path) -> list[list[str]]:
    with open(record, newline="") as f:
        return list(csv.reader(f))


def imports_from(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(site)!r}); import demo._speed as m; print(m.add(20, 22))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_install_prefix(tmp_path: Path, demo_wheel: Path) -> None:
    prefix = tmp_path / "prefix"
    out = soabi_shim("install", "--prefix", str(prefix), str(demo_wheel))
    assert out.returncode == 0, out.stdout + out.stderr
    site = site_under(prefix)
    alias = site / "demo" / f"_speed{EXT_SUFFIX}"
    assert alias.is_symlink() and os.readlink(alias) == f"./_speed{MUSL_SUFFIX}"
    record = rows(site / "demo-1.0.dist-info" / "RECORD")
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] in record
    assert any(r[0] == f"demo/_speed{MUSL_SUFFIX}" and r[1].startswith("sha256=") for r in record)
    assert imports_from(site).stdout.strip() == "42"
    # byte-compiled by default, like python -m installer
    assert list((site / "demo" / "__pycache__").glob("__init__.*.pyc"))


def test_install_destdir_staging(tmp_path: Path, demo_wheel: Path) -> None:
    stage = tmp_path / "stage"
    out = soabi_shim("install", "--destdir", str(stage), "--prefix", "/usr", "--no-compile-bytecode", str(demo_wheel))
    assert out.returncode == 0, out.stdout + out.stderr
    final_site = site_under(Path("/usr"))
    staged_site = stage / final_site.relative_to("/")
    alias = staged_site / "demo" / f"_speed{EXT_SUFFIX}"
    assert alias.is_symlink()
    assert os.readlink(alias) == f"./_speed{MUSL_SUFFIX}"  # relative: right after the staging root is dropped
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] in rows(staged_site / "demo-1.0.dist-info" / "RECORD")
    assert not list((staged_site / "demo").glob("__pycache__"))
    assert not Path(final_site / "demo").exists()
    assert imports_from(staged_site).stdout.strip() == "42"


def test_install_errors_leave_nothing(tmp_path: Path, demo_wheel: Path) -> None:
    target = tmp_path / "prefix"
    missing = soabi_shim("install", "--prefix", str(target), str(tmp_path / "nope-1.0-py3-none-any.whl"))
    assert missing.returncode == 2 and missing.stderr.startswith("ERROR ") and "no such file" in missing.stderr
    corrupt = tmp_path / "demo-1.0-py3-none-any.whl"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip")
    bad = soabi_shim("install", "--prefix", str(target), str(corrupt))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    # A zip whose member is damaged mid-install: nothing half-installed.
    import zipfile

    broken = tmp_path / "broken" / demo_wheel.name
    broken.parent.mkdir()
    with zipfile.ZipFile(demo_wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".so"):
                data = data[: len(data) // 2]  # RECORD hash and size no longer match
            dst.writestr(info, data)
    out = soabi_shim("install", "--prefix", str(target), str(broken))
    assert "Traceback" not in out.stderr
    if out.returncode == 0:
        # pypa/installer does not validate hashes unless asked; then it must be a full install.
        assert (site_under(target) / "demo-1.0.dist-info" / "RECORD").exists()
    wrong = tmp_path / "w" / "demo-1.0-cp27-cp27mu-manylinux1_i686.whl"
    wrong.parent.mkdir()
    wrong.write_bytes(demo_wheel.read_bytes())
    plat = soabi_shim("install", "--prefix", str(tmp_path / "p2"), str(wrong))
    assert plat.returncode == 2 and "not supported by this interpreter" in plat.stderr
    assert not (tmp_path / "p2").exists()


def test_install_existing_in_the_way(tmp_path: Path, demo_wheel: Path) -> None:
    prefix = tmp_path / "prefix"
    assert soabi_shim("install", "--prefix", str(prefix), str(demo_wheel)).returncode == 0
    before = sorted(str(p) for p in prefix.rglob("*"))
    again = soabi_shim("install", "--prefix", str(prefix), str(demo_wheel))
    assert again.returncode == 1
    assert "already installed" in again.stderr and "Traceback" not in again.stderr
    assert sorted(str(p) for p in prefix.rglob("*")) == before


def test_installed_tree_uninstalls_cleanly(venv: object, demo_wheel: Path) -> None:
    from tests.conftest import Venv

    assert isinstance(venv, Venv)
    # Level 0 only: pip removes the .pyc of each recorded .py, but not the
    # opt-1 files pypa/installer also writes by default (unrelated to us).
    out = soabi_shim("install", "--python", str(venv.python), "--compile-bytecode", "0", str(demo_wheel))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (venv.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    assert venv.run("import demo._speed").returncode == 0
    venv.pip("uninstall", "-y", "demo")
    assert not (venv.site / "demo").exists()


def test_install_records_only_aliases_it_created(venv: object, demo_wheel: Path, tmp_path: Path) -> None:
    """Issue 11 item 3: another distribution owns a regular file with the
    alias name; after install and ``pip uninstall`` of the new wheel that
    file is still there (and was never written to a RECORD of ours)."""
    from tests.conftest import Venv, make_wheel

    assert isinstance(venv, Venv)
    other = make_wheel(tmp_path / "w", "other", "1.0", {f"demo/_speed{EXT_SUFFIX}": b"other's own file"})
    venv.pip("install", "--no-deps", str(other))
    owned = venv.site / "demo" / f"_speed{EXT_SUFFIX}"
    assert owned.read_bytes() == b"other's own file"
    out = soabi_shim("install", "--python", str(venv.python), "--compile-bytecode", "0", str(demo_wheel))
    assert out.returncode == 0, out.stdout + out.stderr
    record = rows(venv.site / "demo-1.0.dist-info" / "RECORD")
    assert not [r for r in record if r[0] == f"demo/_speed{EXT_SUFFIX}"], record
    venv.pip("uninstall", "-y", "demo")
    assert owned.read_bytes() == b"other's own file"
    assert not (venv.site / "demo" / f"_speed{MUSL_SUFFIX}").exists()


def test_install_never_records_a_hand_made_link(tmp_path: Path, demo_wheel: Path) -> None:
    prefix = tmp_path / "prefix"
    site = site_under(prefix)
    (site / "demo").mkdir(parents=True)
    hand_made = site / "demo" / f"_speed{EXT_SUFFIX}"
    hand_made.symlink_to(f"_speed{MUSL_SUFFIX}")  # made by an admin before the install
    out = soabi_shim("install", "--prefix", str(prefix), "--no-compile-bytecode", str(demo_wheel))
    assert out.returncode == 0, out.stdout + out.stderr
    record = rows(site / "demo-1.0.dist-info" / "RECORD")
    assert not [r for r in record if r[0] == f"demo/_speed{EXT_SUFFIX}"], record
    assert hand_made.is_symlink()


def test_install_permission_error_is_reported_with_its_message(tmp_path: Path, demo_wheel: Path) -> None:
    if os.geteuid() == 0:
        import pytest

        pytest.skip("root writes into read-only directories")
    prefix = tmp_path / "prefix"
    site = site_under(prefix)
    site.mkdir(parents=True)
    site.chmod(0o555)
    try:
        out = soabi_shim("install", "--prefix", str(prefix), "--no-compile-bytecode", str(demo_wheel))
    finally:
        site.chmod(0o755)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Permission denied" in out.stderr and "invalid wheel" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert not list(site.iterdir())


def test_install_errors_in_process(tmp_path: Path, demo_wheel: Path, monkeypatch: object) -> None:
    """install_wheels maps installer's own errors to UsageError and OSError to InstallError."""
    import installer
    import pytest
    from installer.exceptions import InvalidWheelSource

    from soabi_shim.errors import UsageError
    from soabi_shim.install import InstallError, install_wheels

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    for exc, kind, text in [
        (InvalidWheelSource("bad dist-info"), UsageError, "invalid wheel (InvalidWheelSource: bad dist-info)"),
        (PermissionError(13, "Permission denied"), InstallError, "Permission denied"),
        (OSError(28, "No space left on device"), InstallError, "No space left on device"),
    ]:

        def fail(*args: object, _exc: BaseException = exc) -> None:
            raise _exc

        monkeypatch.setattr(installer, "install", fail)
        with pytest.raises(kind) as info:
            install_wheels([str(demo_wheel)], prefix=str(tmp_path / "p"), bytecode_levels=())
        assert text in str(info.value)
        assert type(info.value) is kind
