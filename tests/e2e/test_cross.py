"""End to end on foreign architectures: musl-linked CPython 3.11 cross-built
for aarch64 and armv7 (``tools/build_cross.py``), run under qemu user-mode
emulation, with real musllinux wheels from PyPI.

* ``aarch64-gnu311``: SOABI ``cpython-311-aarch64-linux-gnu`` (a cross build
  from a glibc host, as Yocto's): cp311 ``musllinux_1_2_aarch64`` wheels carry
  ``-aarch64-linux-musl`` names and fail.
* ``armv7-gnu311``: SOABI ``cpython-311-arm-linux-gnueabihf``: cp311
  ``musllinux_1_2_armv7l`` wheels carry ``-arm-linux-musleabihf`` names.
* ``aarch64-musl311``: the native triplet: everything loads, nothing is aliased.

Each test works on a copy of the interpreter's prefix as ``ROOT/usr`` (a
small target root file system: its own ``site-packages``, pip installed),
so no venv has to be made under emulation.  pip under qemu is slow: every
test keeps its pip runs to one to three.

The interpreters are built by ``python tools/build_cross.py --all`` (after
``tools/ci_cross.sh`` as root).  Not in the cache: skipped with the reason,
unless ``SOABI_SHIM_REQUIRE_E2E=1`` (CI), where they are built and a failure
to build fails the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.conftest import AS_NOBODY, ROOT, soabi_shim
from tests.e2e.conftest import record_rows
from tools import build_cross

pytestmark = pytest.mark.e2e

MISMATCHED = ["aarch64-gnu311", "armv7-gnu311"]
NATIVE = "aarch64-musl311"
# Both have cp311 musllinux_1_2 wheels for aarch64 AND armv7l (few projects ship
# armv7l): markupsafe is C, orjson is Rust and bundles libgcc_s in orjson.libs/.
PINS = {"markupsafe": "3.0.4", "orjson": "3.11.9"}
# distribution -> extension module
IMPORTS = {"markupsafe": "markupsafe._speedups", "orjson": "orjson.orjson"}
PROBE = """
import importlib
for dist, mod in {imports!r}.items():
    try:
        m = importlib.import_module(mod)
        if dist == "markupsafe":
            import markupsafe; assert markupsafe.escape("<") == "&lt;"
        elif dist == "orjson":
            import orjson; assert orjson.loads(orjson.dumps([1])) == [1]
        print(dist, "ok", m.__file__)
    except Exception as e:
        print(dist, type(e).__name__ + ":", str(e).replace("\\n", " "))
"""
ALL_OK = {dist: "ok" for dist in IMPORTS}
NOT_FOUND = {dist: "ModuleNotFoundError:" for dist in IMPORTS}


def _unavailable(reason: str) -> None:
    if os.environ.get("SOABI_SHIM_REQUIRE_E2E"):
        pytest.fail(f"cross end-to-end suite required but cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cross_interpreter(e2e_cache: Path) -> Any:
    """target -> bin/python3.11 of that cross-built interpreter, from the cache.

    Not built: skipped with the reason, or (``SOABI_SHIM_REQUIRE_E2E=1``) built,
    failing the test if it cannot be.
    """
    cache: dict[str, Path] = {}

    def get(target: str) -> Path:
        if target not in cache:
            arch = build_cross.ARCHES[build_cross.TARGETS[target]["arch"]]
            registered = Path("/proc/sys/fs/binfmt_misc", arch["binfmt"]).is_file()
            if not os.environ.get("SOABI_SHIM_REQUIRE_E2E"):
                if not build_cross.is_built(target, e2e_cache):
                    pytest.skip(f"{target} not built (python tools/build_cross.py --all, after tools/ci_cross.sh)")
                if not registered:
                    pytest.skip(f"{arch['binfmt']} not registered with binfmt_misc (tools/ci_cross.sh, as root)")
            reason = build_cross.can_build(e2e_cache)
            if reason:
                _unavailable(reason)
            try:
                cache[target] = build_cross.ensure_interpreter(target, e2e_cache)
            except build_cross.BuildError as exc:
                pytest.fail(f"building {target} failed: {exc}", pytrace=False)
        return cache[target]

    return get


@pytest.fixture(scope="session")
def cross_wheels(e2e_cache: Path) -> dict[str, list[Path]]:
    """wheel platform -> the pinned cp311 wheels (one ``pip download`` per platform)."""
    out = {}
    for platform in sorted({t["wheel_platform"] for t in build_cross.TARGETS.values()}):
        dest = e2e_cache / "cross" / "wheels" / platform
        dest.mkdir(parents=True, exist_ok=True)

        def found(dest: Path = dest, platform: str = platform) -> list[Path]:
            return sorted(
                w
                for d, v in PINS.items()
                for w in dest.glob(f"{d}-{v}-cp311-cp311-*.whl")
                if w.name.endswith(f"{platform}.whl")
            )

        if len(found()) != len(PINS):
            cmd = [
                *(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:"),
                *("--platform", platform, "--python-version", "3.11", "--implementation", "cp", "--no-deps"),
                *("-d", str(dest), *(f"{d}=={v}" for d, v in PINS.items())),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                _unavailable(f"cannot download {platform} wheels from PyPI: {r.stderr.strip()[-300:]}")
        assert len(found()) == len(PINS), found()
        out[platform] = found()
    return out


def _env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON", "PIP_"))}
    e["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    e.update(extra or {})
    return e


def _copy_tree(src: Path, dst: Path, usr: str = "usr") -> None:
    """Copy a root: the standard library hard-linked where possible (never written), the rest copied."""
    stdlib = src / usr / "lib" / "python3.11"
    site = stdlib / "site-packages"

    def copy(s: str, d: str) -> object:
        p = Path(s)
        if stdlib in p.parents and site not in p.parents:
            try:
                os.link(s, d)
                return d
            except OSError:
                pass
        return shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=copy, ignore=shutil.ignore_patterns(".complete"))


class TargetRoot:
    """A target root file system: the cross interpreter's prefix copied as ``ROOT/usr``."""

    def __init__(self, root: Path, target: str, prefix: Optional[Path] = None) -> None:
        self.root = root
        self.target = target
        self.python = root / "usr" / "bin" / "python3.11"
        self.site = root / "usr" / "lib" / "python3.11" / "site-packages"
        if prefix is not None:
            staging = root.parent / (root.name + ".prefix")
            staging.mkdir(parents=True)
            _copy_tree(prefix, staging / "usr", usr=".")
            staging.rename(root)
            # The loader at the path the interpreter's PT_INTERP names, inside the root too.
            ldso = build_cross.read_interp(self.python)
            assert ldso and ldso.startswith("/"), ldso
            inside = root / ldso.lstrip("/")
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(ldso), inside)

    def copy(self, dest: Path) -> TargetRoot:
        _copy_tree(self.root, dest)
        return TargetRoot(dest, self.target)

    def run(
        self, code: str, *, env: Optional[dict[str, str]] = None, nobody: bool = False
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*(AS_NOBODY if nobody else []), str(self.python), "-c", code]
        return subprocess.run(cmd, capture_output=True, text=True, env=_env(env), check=False)

    def pip(self, *args: str, env: Optional[dict[str, str]] = None) -> None:
        r = subprocess.run(
            [str(self.python), "-m", "pip", "-q", *args], capture_output=True, text=True, env=_env(env), check=False
        )
        assert r.returncode == 0, r.stdout + r.stderr

    def probe(self, *, env: Optional[dict[str, str]] = None, nobody: bool = False) -> dict[str, str]:
        """dist -> "ok" or the exception's class (with a colon)."""
        out = self.run(PROBE.format(imports=IMPORTS), env=env, nobody=nobody)
        assert out.returncode == 0, out.stderr
        return {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()}

    def cli(self, *args: str, deps: Path) -> subprocess.CompletedProcess[str]:
        """This checkout's CLI run *by the target interpreter* under qemu (no install, no hook)."""
        env = _env({"PYTHONPATH": f"{ROOT}{os.pathsep}{deps}", "PYTHONDONTWRITEBYTECODE": "1"})
        return subprocess.run(
            [str(self.python), "-m", "soabi_shim", *args], capture_output=True, text=True, env=env, check=False
        )

    def ext_suffix(self) -> str:
        """EXT_SUFFIX, asked with the hook off (a start that may write would heal)."""
        code = "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"
        return str(self.run(code, env={"SOABI_SHIM_DISABLE": "1"}).stdout.strip())


def aliases_in(site: Path) -> dict[str, str]:
    """Every symlinked extension: path relative to site -> link text."""
    return {str(p.relative_to(site)): os.readlink(p) for p in sorted(site.rglob("*.so")) if p.is_symlink()}


def records(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in sorted(site.glob("*.dist-info/RECORD"))}


@pytest.fixture
def make_root(cross_interpreter: Any, world_readable_tmp: Path) -> Any:
    def make(target: str, name: str = "root") -> TargetRoot:
        return TargetRoot(world_readable_tmp / f"{target}-{name}", target, cross_interpreter(target).parent.parent)

    return make


def _wheels(cross_wheels: dict[str, list[Path]], target: str) -> list[str]:
    return [str(w) for w in cross_wheels[build_cross.TARGETS[target]["wheel_platform"]]]


def _twin_suffix(ext_suffix: str) -> str:
    for own, twin in (("-linux-gnueabihf.so", "-linux-musleabihf.so"), ("-linux-gnu.so", "-linux-musl.so")):
        if ext_suffix.endswith(own):
            return ext_suffix[: -len(own)] + twin
    if ext_suffix.endswith("-linux-musl.so"):
        return ext_suffix[: -len("-linux-musl.so")] + "-linux-gnu.so"
    raise AssertionError(ext_suffix)


@pytest.mark.parametrize("target", list(build_cross.TARGETS))
def test_interpreters_are_what_they_claim(target: str, cross_interpreter: Any, e2e_cache: Path) -> None:
    """SOABI, machine and loader of each cross interpreter, as run under qemu."""
    machines = {"aarch64": "aarch64", "armv7": "armv7l"}
    python = cross_interpreter(target)
    t = build_cross.TARGETS[target]
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import platform, sysconfig as s; print(s.get_config_var('SOABI'), platform.machine())",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    assert out.stdout.split() == [t["soabi"], machines[t["arch"]]]
    assert build_cross.read_interp(python) == str(build_cross.ldso_path(build_cross.cross_dir(e2e_cache), t["arch"]))


@pytest.mark.parametrize("target", MISMATCHED)
def test_installed_shim_heals_pip_installs_under_qemu(
    target: str, make_root: Any, cross_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path]
) -> None:
    root: TargetRoot = make_root(target)
    root.pip("install", "--no-index", "--find-links", str(shim_wheelhouse["3.11"]), "soabi-shim")
    assert (root.site / "soabi_shim-startup.pth").is_file()
    # A separate process, with the hook off: pip would heal at its own exit (that path is
    # proven on x86_64 by tests/e2e/test_startup_musl.py); here the fallback and the
    # heal at the next start are under test.
    root.pip("install", "--no-index", *_wheels(cross_wheels, target), env={"SOABI_SHIM_DISABLE": "1"})
    ext_suffix = root.ext_suffix()
    twins = sorted(str(p.relative_to(root.site)) for p in root.site.rglob(f"*{_twin_suffix(ext_suffix)}"))
    assert len(twins) == len(IMPORTS), twins

    # Read-only site dir for this user: the import fallback serves; nothing written or printed.
    ro = root.run("import markupsafe._speedups, orjson; print('ok')", nobody=True)
    assert (ro.stdout, ro.stderr, ro.returncode) == ("ok\n", "", 0)
    assert root.probe(nobody=True) == ALL_OK
    assert aliases_in(root.site) == {}

    # Without soabi-shim (opted out) the extensions do not import.
    assert root.probe(env={"SOABI_SHIM_DISABLE": "1"}) == NOT_FOUND

    # A start that may write heals, silently, and records the aliases.
    silent = root.run("pass")
    assert (silent.stdout, silent.stderr, silent.returncode) == ("", "", 0)
    links = aliases_in(root.site)
    assert sorted(links) == sorted(t.replace(_twin_suffix(ext_suffix), ext_suffix) for t in twins)
    for link, text in links.items():
        assert text == "./" + Path(link).name.replace(ext_suffix, _twin_suffix(ext_suffix))
        assert link in record_rows(root.site)
    assert root.probe(env={"SOABI_SHIM_DISABLE": "1"}) == ALL_OK  # the aliases alone

    # Uninstall leaves nothing behind: no alias, no extension, no bundled library.
    root.pip("uninstall", "-y", *IMPORTS)
    assert aliases_in(root.site) == {}
    assert not [p for p in root.site.rglob("*.so*") if "soabi_shim" not in str(p)]


def test_native_musl_triplet_gets_no_alias(
    make_root: Any, cross_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path], deps_target: dict[str, Path]
) -> None:
    root: TargetRoot = make_root(NATIVE)
    assert root.ext_suffix() == ".cpython-311-aarch64-linux-musl.so"
    root.pip(
        "install", "--no-index", "--find-links", str(shim_wheelhouse["3.11"]), "soabi-shim",
        *_wheels(cross_wheels, NATIVE),
    )  # fmt: skip
    assert root.probe() == ALL_OK
    assert root.probe(env={"SOABI_SHIM_DISABLE": "1"}) == ALL_OK
    check = root.cli("check", "--json", deps=deps_target["3.11"])
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["aliases"] == []
    assert aliases_in(root.site) == {}


def _plant_foreign_twin(root: TargetRoot, tmp: Path) -> Path:
    """An x86_64 shared object (no libc at all) carrying the target's twin name, owned by a distribution."""
    name = "_speed" + _twin_suffix(root.ext_suffix())
    (tmp / "x.c").write_text("int soabi_shim_foreign(void) { return 42; }\n")
    pkg = root.site / "foreignbuilt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    subprocess.run(["gcc", "-shared", "-fPIC", "-nostdlib", "-o", str(pkg / name), str(tmp / "x.c")], check=True)
    dist = root.site / "foreignbuilt-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: foreignbuilt\nVersion: 1.0\n")
    rows = ["foreignbuilt/__init__.py", f"foreignbuilt/{name}", "foreignbuilt-1.0.dist-info/RECORD"]
    (dist / "RECORD").write_text("".join(f"{r},,\n" for r in rows))
    return pkg / name


MACHINE_NAMES = {"aarch64": "aarch64 64-bit little-endian", "armv7": "arm 32-bit little-endian"}


@pytest.mark.parametrize("target", MISMATCHED)
def test_foreign_architecture_twin_is_refused(
    target: str, make_root: Any, deps_target: dict[str, Path], tmp_path: Path
) -> None:
    root: TargetRoot = make_root(target)
    so = _plant_foreign_twin(root, tmp_path)
    heal = root.cli("heal", "--json", deps=deps_target["3.11"])
    assert heal.returncode == 1, heal.stdout + heal.stderr
    (problem,) = json.loads(heal.stdout)["problems"]
    assert problem["path"] == str(so)
    want = f"ELF for x86_64 64-bit little-endian, interpreter is {MACHINE_NAMES[build_cross.TARGETS[target]['arch']]}"
    assert problem["reason"] == want
    assert aliases_in(root.site) == {}


# needs --root from wip/cli
@pytest.mark.parametrize("target", [*MISMATCHED, NATIVE])
def test_heal_root_from_the_host_matches_the_interpreters_own_heal(
    target: str, make_root: Any, cross_wheels: dict[str, list[Path]], deps_target: dict[str, Path], tmp_path: Path
) -> None:
    """``heal --root`` run by the x86_64 host over a copy of the target tree makes
    the same aliases and RECORD rows as the target interpreter's own ``heal``."""
    own: TargetRoot = make_root(target)
    own.pip("install", "--no-index", *_wheels(cross_wheels, target))
    before = own.probe()
    assert before == (ALL_OK if target == NATIVE else NOT_FOUND), before  # without soabi-shim
    host = own.copy(tmp_path / "host-root")
    assert records(host.site) == records(own.site)

    mine = own.cli("heal", "--json", deps=deps_target["3.11"])
    assert mine.returncode == 0, mine.stdout + mine.stderr
    theirs = soabi_shim("heal", "--root", str(host.root), "--python", "/usr/bin/python3.11", "--json")
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr

    def summary(report: dict[str, Any]) -> list[tuple[str, str, str]]:
        return sorted((a["distribution"], a["action"], Path(a["target"]).name) for a in report["aliases"])

    assert summary(json.loads(theirs.stdout)) == summary(json.loads(mine.stdout))
    expected = 0 if target == NATIVE else len(IMPORTS)
    assert len(aliases_in(own.site)) == expected
    assert aliases_in(host.site) == aliases_in(own.site)
    assert records(host.site) == records(own.site)
    assert host.probe() == ALL_OK  # the host's aliases work on the target


# needs --root from wip/cli
def test_heal_root_refuses_a_foreign_architecture_object(make_root: Any, tmp_path: Path) -> None:
    root: TargetRoot = make_root("aarch64-gnu311")
    so = _plant_foreign_twin(root, tmp_path)
    heal = soabi_shim("heal", "--root", str(root.root), "--python", "/usr/bin/python3.11", "--json")
    assert heal.returncode == 1, heal.stdout + heal.stderr
    (problem,) = json.loads(heal.stdout)["problems"]
    assert Path(problem["path"]).name == so.name
    assert problem["reason"] == f"ELF for x86_64 64-bit little-endian, interpreter is {MACHINE_NAMES['aarch64']}"
    assert aliases_in(root.site) == {}
