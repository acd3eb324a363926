"""Fixtures of the end-to-end suite: real musl-linked CPythons, real
musllinux wheels from PyPI, and soabi-shim with its dependencies as wheels.

A plain ``python -m pytest`` never builds anything and never touches the
system: it uses the interpreters already in the cache
(``$SOABI_SHIM_E2E_CACHE``, default ``~/.cache/soabi-shim-e2e``, filled by
``python tools/build_musl_python.py --all``) and *skips* the tests of a
flavour that is not there, with a one-line reason.  With
``SOABI_SHIM_REQUIRE_E2E=1`` (CI, ``tox -e e2e``) the fixtures build what is
missing (as root) and fail when they cannot, so a skip never passes for success.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional, TypeVar

import pytest

from tests.conftest import AS_NOBODY, ROOT
from tests.e2e.wheels import download_wheels, imports
from tools import build_musl_python as builder

pytestmark = pytest.mark.e2e

FLAVOURS = {
    # flavour: the Python version of its wheels ("t": free-threaded)
    "gnu311": "3.11",
    "musl311": "3.11",
    "musl39": "3.9",
    "musl313": "3.13",
    "musl313t": "3.13t",
}
_DEPS_310_PLUS = ["installer>=1,<2", "packaging>=22", "pluggy>=1,<2"]
DEPS = {
    "3.11": _DEPS_310_PLUS,
    "3.9": ["installer==0.7.0", "packaging>=22", "pluggy>=1,<2"],
    "3.13": _DEPS_310_PLUS,
    "3.13t": _DEPS_310_PLUS,
}

T = TypeVar("T")


def required() -> bool:
    """SOABI_SHIM_REQUIRE_E2E=1: build what is missing and fail, never skip."""
    return os.environ.get("SOABI_SHIM_REQUIRE_E2E", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"end-to-end suite required but cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


class _Lazy(dict[str, T]):
    """A mapping filled on first access, so a test asks only for what it uses."""

    def __init__(self, make: Callable[[str], T]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> T:
        value = self._make(key)
        self[key] = value
        return value


def find_interpreter(flavour: str, cache: Path) -> Path:
    """The flavour's interpreter from the cache; skip (or, if required, build) when absent."""
    py = builder.cached_interpreter(flavour, cache)
    if py is not None:
        return py
    if not required():
        pytest.skip(
            f"{flavour} not built in {cache} (python tools/build_musl_python.py --all, as root;"
            " or SOABI_SHIM_REQUIRE_E2E=1)"
        )
    reason = builder.can_build(cache, [flavour])
    if reason:
        pytest.fail(f"end-to-end suite required but {flavour} cannot be built: {reason}", pytrace=False)
    try:
        return builder.ensure_interpreter(flavour, cache)
    except builder.BuildError as exc:
        pytest.fail(f"building {flavour} failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def e2e_cache() -> Path:
    return builder.default_cache_dir()


@pytest.fixture(scope="session")
def interpreters(e2e_cache: Path) -> dict[str, Path]:
    """flavour -> bin/python3.X, looked up (skipped or built) on first use."""
    return _Lazy(lambda flavour: find_interpreter(flavour, e2e_cache))


def _download(version: str, cache: Path) -> list[Path]:
    try:
        return download_wheels(version, cache / "wheels" / version)
    except RuntimeError as exc:
        _unavailable(f"cannot download cp{version} musllinux wheels: {str(exc).splitlines()[0]}")
        raise


@pytest.fixture(scope="session")
def musl_wheels(e2e_cache: Path) -> dict[str, list[Path]]:
    """version ("3.9", "3.11", "3.13", "3.13t") -> the pinned musllinux wheels, downloaded on first use."""
    return _Lazy(lambda version: _download(version, e2e_cache))


@pytest.fixture(scope="session")
def shim_wheelhouse(e2e_cache: Path, shim_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """soabi-shim (this checkout) plus its pure-Python dependencies, per version.

    The dependencies are downloaded once into the cache; the wheelhouse itself
    is private to this session (other checkouts may share the cache).
    """
    return _Lazy(lambda version: _wheelhouse(version, e2e_cache, shim_wheel, tmp_path_factory))


def _wheelhouse(version: str, e2e_cache: Path, shim_wheel: Path, factory: pytest.TempPathFactory) -> Path:
    pyver = version.rstrip("t")
    d = e2e_cache / "deps" / pyver
    if not any(d.glob("pluggy-*.whl")):
        d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps"]
        r = subprocess.run(
            [*cmd, "--python-version", pyver, "-d", str(d), *DEPS[version]],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            _unavailable(f"cannot download soabi-shim's dependencies for {pyver}: {r.stderr.strip()[-200:]}")
    house = factory.mktemp(f"wheelhouse-{version}")
    for wheel in [*d.glob("*.whl"), shim_wheel]:
        if not wheel.name.startswith("soabi_shim-") or wheel == shim_wheel:
            shutil.copy(wheel, house)
    return house


@pytest.fixture(scope="session")
def deps_target(shim_wheelhouse: dict[str, Path], e2e_cache: Path) -> dict[str, Path]:
    """soabi-shim's dependencies unpacked, to run this checkout with PYTHONPATH."""
    return _Lazy(lambda version: _deps_target(shim_wheelhouse[version], version, e2e_cache))


def _deps_target(house: Path, version: str, e2e_cache: Path) -> Path:
    target = e2e_cache / "deps-target" / version.rstrip("t")
    if not (target / "pluggy").is_dir():
        # Unpacked beside the target, then renamed: another session may be doing the same.
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        wheels = [str(w) for w in house.glob("*.whl") if not w.name.startswith("soabi_shim-")]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp), *wheels],
            check=True,
            capture_output=True,
        )
        try:
            tmp.rename(target)
        except OSError:  # another session got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


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
        out = subprocess.run([str(self.python), "-m", "pip", "-q", *args], capture_output=True, text=True, env=e)
        if out.returncode != 0:
            pytest.fail(f"pip {' '.join(args)} failed (exit {out.returncode}):\n{out.stderr[-3000:]}", pytrace=False)
        return out

    def install_shim(self, wheelhouse: Path) -> None:
        self.pip("install", "--no-index", "--find-links", str(wheelhouse), "soabi-shim")

    def probe(
        self, *, env: Optional[dict[str, str]] = None, nobody: bool = False, items: Optional[dict[str, tuple]] = None
    ) -> dict[str, str]:
        """Import each wheel's extension module; return dist -> "ok" or the error."""
        items = imports(self.version) if items is None else items
        out = self.run(PROBE + f"\nprobe({sorted(items.items())!r})", env=env, nobody=nobody)
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
    elif dist == "frozenlist":
        import frozenlist; assert frozenlist.FrozenList.__module__ == "frozenlist._frozenlist"
        fl = frozenlist.FrozenList([1]); fl.freeze(); assert fl.frozen
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


def record_rows(site: Path) -> set[str]:
    """The paths every RECORD of ``site`` lists."""
    rows: set[str] = set()
    for record in site.glob("*.dist-info/RECORD"):
        with open(record, newline="") as f:
            rows.update(r[0] for r in csv.reader(f))
    return rows
