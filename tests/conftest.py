"""Shared fixtures: real extensions compiled with gcc, real wheels, real venvs."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

from tests.extension import compile_extension

ROOT = Path(__file__).resolve().parent.parent
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")  # e.g. .cpython-311-x86_64-linux-gnu.so
MUSL_SUFFIX = EXT_SUFFIX.replace("-linux-gnu.so", "-linux-musl.so")
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    tag: str = "",
    extra_dist_info: Optional[dict[str, str]] = None,
) -> Path:
    """Build a real wheel (zip, WHEEL, METADATA, RECORD with hashes)."""
    tag = tag or f"{TAG}-{TAG}-linux_x86_64"
    dest.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: soabi-shim-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    for key, text in (extra_dist_info or {}).items():
        meta[f"{dist_info}/{key}"] = text.encode()
    everything = {**files, **meta}
    record = "".join(f"{p},{_digest(d)},{len(d)}\n" for p, d in everything.items()) + f"{dist_info}/RECORD,,\n"
    path = dest / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in everything.items():
            z.writestr(p, d)
        z.writestr(f"{dist_info}/RECORD", record)
    return path


class Venv:
    """A real venv, made without pip; pip runs from the host with --python."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        out = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        )
        self.site = Path(out.stdout.strip())

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), "--disable-pip-version-check", "-q", *args],
            check=check,
            capture_output=True,
            text=True,
        )

    def run(
        self, code: str, *, env: Optional[dict[str, str]] = None, flags: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *flags, "-c", code], capture_output=True, text=True, env=env, check=False
        )


def make_venv(path: Path, *system_site: str) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", *system_site, str(path)], check=True)
    return Venv(path)


def soabi_shim(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI of this checkout in a subprocess."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "soabi_shim", *args], capture_output=True, text=True, env=e, check=False
    )


@pytest.fixture
def venv(tmp_path: Path) -> Venv:
    return make_venv(tmp_path / "venv")


@pytest.fixture(scope="session")
def ext_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A glibc-linked extension named for musl (the libc twin on this machine)."""
    d = tmp_path_factory.mktemp("ext")
    compile_extension(d, "_speed", MUSL_SUFFIX)
    return d


@pytest.fixture(scope="session")
def demo_wheel(tmp_path_factory: pytest.TempPathFactory, ext_dir: Path) -> Path:
    """``demo 1.0``: a package whose extension carries the libc-twin name."""
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    return make_wheel(
        tmp_path_factory.mktemp("wheels"),
        "demo",
        "1.0",
        {"demo/__init__.py": b"", f"demo/_speed{MUSL_SUFFIX}": so},
    )


def build_wheel(project: Path, out: Path) -> Path:
    """Build the wheel of ``project`` (hatchling, no build isolation) into ``out``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="session")
def shim_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """soabi-shim itself, built from this checkout."""
    return build_wheel(ROOT, tmp_path_factory.mktemp("shim-wheel"))


AS_NOBODY = [
    # A real unprivileged uid that can still read root's files (pyenv lives
    # in /root, mode 0700): CAP_DAC_READ_SEARCH only, no write override.
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A temporary directory other users can read (pytest's is 0700)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="soabi-shim-test-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
