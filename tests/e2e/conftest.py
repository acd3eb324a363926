"""Fixtures of the end-to-end suite: real musl-linked CPythons, real
musllinux wheels from PyPI, and soabi-shim with its dependencies as wheels.

Where the interpreters cannot be built (not root, no Debian archive) the
tests are *skipped with the reason*; with ``SOABI_SHIM_REQUIRE_E2E=1`` (CI)
they fail instead, so a skip can never pass for success.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import AS_NOBODY, ROOT
from tests.e2e.wheels import IMPORTS, download_wheels
from tools import build_musl_python as builder

pytestmark = pytest.mark.e2e

FLAVOURS = {
    # flavour: (python version of the wheels, the libc part the wheels' names carry, mismatched?)
    "gnu311": "3.11",
    "musl311": "3.11",
    "musl39": "3.9",
}
DEPS = {
    "3.11": ["installer>=1,<2", "packaging>=22", "pluggy>=1,<2"],
    "3.9": ["installer==0.7.0", "packaging>=22", "pluggy>=1,<2"],
}


def _unavailable(reason: str) -> None:
    if os.environ.get("SOABI_SHIM_REQUIRE_E2E"):
        pytest.fail(f"end-to-end suite required but cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_cache() -> Path:
    return Path(os.environ.get("SOABI_SHIM_E2E_CACHE", str(Path.home() / ".cache" / "soabi-shim-e2e")))


@pytest.fixture(scope="session")
def interpreters(e2e_cache: Path) -> dict[str, Path]:
    reason = builder.can_build(e2e_cache)
    if reason:
        _unavailable(reason)
    out = {}
    for flavour in FLAVOURS:
        try:
            out[flavour] = builder.ensure_interpreter(flavour, e2e_cache)
        except builder.BuildError as exc:
            pytest.fail(f"building {flavour} failed: {exc}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def musl_wheels(e2e_cache: Path) -> dict[str, list[Path]]:
    try:
        return {v: download_wheels(v, e2e_cache / "wheels" / v) for v in ("3.11", "3.9")}
    except subprocess.CalledProcessError as exc:
        _unavailable(f"cannot download wheels from PyPI: {exc}")
        raise


@pytest.fixture(scope="session")
def shim_wheelhouse(e2e_cache: Path, shim_wheel: Path) -> dict[str, Path]:
    """soabi-shim (this checkout) plus its pure-Python dependencies, per version."""
    out = {}
    for version, reqs in DEPS.items():
        d = e2e_cache / "deps" / version
        if not any(d.glob("pluggy-*.whl")):
            d.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--only-binary=:all:",
                    "--no-deps",
                    "--python-version",
                    version,
                    "-d",
                    str(d),
                    *reqs,
                ],
                check=True,
                capture_output=True,
            )
        for old in d.glob("soabi_shim-*.whl"):
            old.unlink()
        shutil.copy(shim_wheel, d)
        out[version] = d
    return out


@pytest.fixture(scope="session")
def deps_target(shim_wheelhouse: dict[str, Path], e2e_cache: Path) -> dict[str, Path]:
    """soabi-shim's dependencies unpacked, to run this checkout with PYTHONPATH."""
    out = {}
    for version, house in shim_wheelhouse.items():
        target = e2e_cache / "deps-target" / version
        if not (target / "pluggy").is_dir():
            wheels = [str(w) for w in house.glob("*.whl") if not w.name.startswith("soabi_shim-")]
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *wheels],
                check=True,
                capture_output=True,
            )
        out[version] = target
    return out


class MuslVenv:
    """A venv of a musl-linked interpreter, with its own pip."""

    def __init__(self, base: Path, root: Path, version: str) -> None:
        self.root = root
        self.version = version
        subprocess.run([str(base), "-m", "venv", str(root)], check=True, capture_output=True)
        self.python = root / "bin" / "python"
        self.site = Path(self.run("import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())

    def run(
        self, code: str, *, env: Optional[dict[str, str]] = None, nobody: bool = False, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*(AS_NOBODY if nobody else []), str(self.python), "-c", code]
        e = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON"))}
        e.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, env=e, check=check)

    def pip(self, *args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON", "PIP_"))}
        e.update(env or {})
        e["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return subprocess.run(
            [str(self.python), "-m", "pip", "-q", *args], capture_output=True, text=True, env=e, check=True
        )

    def install_shim(self, wheelhouse: Path) -> None:
        self.pip("install", "--no-index", "--find-links", str(wheelhouse), "soabi-shim")

    def probe(self, *, env: Optional[dict[str, str]] = None, nobody: bool = False) -> dict[str, str]:
        """Import each wheel's extension module; return dist -> "ok" or the error."""
        out = self.run(PROBE + f"\nprobe({sorted(IMPORTS.items())!r})", env=env, nobody=nobody)
        assert out.returncode == 0, out.stderr
        result: dict[str, str] = {}
        for line in out.stdout.splitlines():
            dist, _, status = line.partition(" ")
            result[dist] = status
        return result


PROBE = """
import importlib, json
def works(dist, mod):
    if dist == "markupsafe":
        import markupsafe; assert markupsafe.escape("<") == "&lt;"
    elif dist == "pyyaml":
        import yaml; assert yaml.__with_libyaml__ and yaml.load("a: 1", Loader=yaml.CSafeLoader) == {"a": 1}
    elif dist == "msgpack":
        import msgpack; assert msgpack.Packer.__module__ == "msgpack._cmsgpack"
        assert msgpack.unpackb(msgpack.packb([1])) == [1]
    elif dist == "rpds-py":
        import rpds; assert rpds.HashTrieMap({1: 2})[1] == 2
    elif dist == "ujson":
        import ujson; assert ujson.dumps([1]) == "[1]"
def probe(items):
    for dist, (top, mod) in items:
        try:
            m = importlib.import_module(mod)
            works(dist, mod)
            print(dist, "ok", m.__file__)
        except Exception as e:
            print(dist, type(e).__name__ + ":", str(e).replace("\\n", " "))
"""


@pytest.fixture
def make_venv(interpreters: dict[str, Path], world_readable_tmp: Path) -> Iterator[object]:
    made: list[MuslVenv] = []

    def make(flavour: str, name: str = "venv") -> MuslVenv:
        v = MuslVenv(interpreters[flavour], world_readable_tmp / f"{flavour}-{name}", FLAVOURS[flavour])
        made.append(v)
        return v

    yield make


def shim_cli(venv: MuslVenv, *args: str, deps: Optional[Path] = None) -> subprocess.CompletedProcess[str]:
    """Run this checkout's CLI *on the musl interpreter* (no install, no hook)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOABI_SHIM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([str(deps)] if deps else [])])
    return subprocess.run(
        [str(venv.python), "-m", "soabi_shim", *args], capture_output=True, text=True, env=env, check=False
    )
