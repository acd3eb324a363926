"""The start-up hook on real musl-linked CPythons: heal at pip's exit, the
fast path, special files, the PEP 829 entry point.

Skipped with the reason when the interpreters are not built; with
``SOABI_SHIM_REQUIRE_E2E=1`` they fail instead (see ``conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import FLAVOURS, MuslVenv, record_rows
from tests.e2e.wheels import IMPORTS

pytestmark = pytest.mark.e2e

MISMATCHED = ["gnu311", "musl39"]
SOABI = "import sys; print(sorted(m for m in sys.modules if m.startswith('soabi_shim')))"


def aliases_in(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.so") if p.is_symlink())


def stamps(site: Path) -> list[str]:
    return sorted(n for n in os.listdir(site / "soabi_shim") if n.startswith(("_ok.", "_fb.")))


def records(site: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in site.glob("*.dist-info/RECORD")}


@pytest.mark.parametrize("how", ["python -m pip", "pip script"])
@pytest.mark.parametrize("flavour", MISMATCHED)
def test_pip_install_returns_healed(
    flavour: str, how: str, make_venv: object, musl_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path]
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    assert venv.run("pass").stderr == ""  # the stamp is current before pip starts
    wheels = [str(w) for w in musl_wheels[version]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON", "PIP_"))}
    if how == "python -m pip":
        cmd = [str(venv.python), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", *wheels]
    else:
        pip = venv.root / "bin" / f"pip{version}"
        cmd = [str(pip), "install", "--no-index", "--disable-pip-version-check", *wheels]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    # pip's own output only: nothing of ours (the wheels' paths may name the e2e cache, soabi-shim-e2e)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "soabi_shim" not in text and "Traceback" not in text, text
    # No interpreter ran since pip returned: every alias is there and recorded.
    links = aliases_in(venv.site)
    assert len(links) == len(IMPORTS)
    assert all(str(p.relative_to(venv.site)) in record_rows(venv.site) for p in links)
    mtime = os.stat(venv.site).st_mtime_ns
    assert stamps(venv.site) == [f"_ok.{mtime}"]
    before = records(venv.site)
    # The next start takes the fast path: nothing imported, nothing written.
    nxt = venv.run(SOABI)
    assert (nxt.stdout, nxt.stderr) == ("[]\n", "")
    assert os.stat(venv.site).st_mtime_ns == mtime and records(venv.site) == before
    # doctor sees that the line ran, though it left no trace.
    probe = venv.run("from soabi_shim import _probe; print(_probe.collect()['startup_hook_loaded'])")
    assert (probe.stdout, probe.stderr) == ("True\n", "")
    # Uninstall leaves nothing of ours.
    venv.pip("uninstall", "-y", "markupsafe", "pyyaml", "msgpack", "rpds-py", "ujson", "soabi-shim")
    assert aliases_in(venv.site) == []
    assert not list(venv.site.glob("soabi_shim*"))


@pytest.mark.parametrize("flavour", ["gnu311"])
def test_python_m_installer_returns_healed(
    flavour: str, make_venv: object, musl_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path]
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    venv.pip("install", "--no-index", "--find-links", str(shim_wheelhouse[version]), "installer")
    assert venv.run("pass").stderr == ""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON"))}
    for wheel in musl_wheels[version]:
        out = subprocess.run(
            [str(venv.python), "-m", "installer", str(wheel)], capture_output=True, text=True, env=env, check=False
        )
        assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert len(aliases_in(venv.site)) == len(IMPORTS)
    assert stamps(venv.site) == [f"_ok.{os.stat(venv.site).st_mtime_ns}"]
    assert venv.run(SOABI).stdout == "[]\n"


@pytest.mark.parametrize("flavour", [*MISMATCHED, "musl311"])
def test_start_is_silent_with_special_files(flavour: str, make_venv: object, shim_wheelhouse: dict[str, Path]) -> None:
    """A FIFO listed in a RECORD, and a FIFO / directory at the stamp path:
    the interpreter starts promptly and silently, also under ``-X dev -W error``."""
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    ext = venv.run("import importlib.machinery as m; print(m.EXTENSION_SUFFIXES[0])").stdout.strip()
    twin = ext.replace("-linux-musl.so", "-linux-gnu.so") if "musl" in ext else ext.replace("-linux-gnu", "-linux-musl")
    pkg = venv.site / "fifopkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    os.mkfifo(pkg / f"_x{twin}")
    dist = venv.site / "fifopkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fifopkg\nVersion: 1.0\n")
    (dist / "RECORD").write_text(f"fifopkg/__init__.py,,\nfifopkg/_x{twin},,\nfifopkg-1.0.dist-info/RECORD,,\n")
    cmd = [str(venv.python), "-X", "dev", "-W", "error", "-c", "pass"]
    for _ in range(2):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    # The FIFO is a problem of the heal: the stamp says so, and each start serves the fallback.
    assert [n.split(".")[0] for n in stamps(venv.site)] == ["_fb"]
    shutil.rmtree(dist)
    shutil.rmtree(pkg)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    (name,) = stamps(venv.site)
    assert name.startswith("_ok.")
    stamp = venv.site / "soabi_shim" / name
    stamp.unlink()
    os.mkfifo(stamp)
    out = subprocess.run([str(venv.python), "-c", SOABI], capture_output=True, text=True, timeout=60, check=False)
    assert (out.stdout, out.stderr) == ("[]\n", "")
    stamp.unlink()
    stamp.mkdir()
    out = subprocess.run([str(venv.python), "-c", SOABI], capture_output=True, text=True, timeout=60, check=False)
    assert (out.stdout, out.stderr) == ("[]\n", "")


@pytest.mark.parametrize("flavour", MISMATCHED)
def test_pep829_entry_point_on_musl(
    flavour: str, make_venv: object, musl_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path]
) -> None:
    """Driven as PEP 829 says (resolve the ``.start`` line with
    ``pkgutil.resolve_name``, call it with no arguments, after the path lines),
    with the ``.pth`` import line out of the way, as 3.15 does."""
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    (venv.site / "soabi_shim-startup.pth").write_text("")  # 3.15 skips its import line
    # Installed with the hook disabled: no heal at pip's exit.
    venv.pip("install", "--no-index", *map(str, musl_wheels[version]), env={"SOABI_SHIM_DISABLE": "1"})
    assert aliases_in(venv.site) == []
    line = (venv.site / "soabi_shim-startup.start").read_text().strip()
    drive = f"import pkgutil\nfn = pkgutil.resolve_name({line!r})\nfn(); fn()\n" + SOABI
    out = venv.run(drive)
    assert out.stderr == "" and "soabi_shim._startup" in out.stdout
    assert stamps(venv.site) == [f"_ok.{os.stat(venv.site).st_mtime_ns}"]
    again = venv.run(drive)
    assert (again.stdout, again.stderr) == ("['soabi_shim', 'soabi_shim._names', 'soabi_shim._start']\n", "")
