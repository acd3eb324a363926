"""End to end, on real musl-linked CPythons with real musllinux wheels from PyPI.

* ``gnu311``: CPython 3.11 linked to musl whose SOABI says ``-gnu`` (a
  cross-build): cp311 musllinux wheels carry ``-musl`` names and fail.
* ``musl39``: CPython 3.9 patched to say ``-musl`` with no fallback (Alpine
  3.14, python-build-standalone since late 2025): cp39 musllinux wheels
  carry ``-gnu`` names and fail.
* ``musl311``: a native musl build: everything loads, nothing is aliased.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import compile_extension
from tests.e2e.conftest import FLAVOURS, MuslVenv, record_rows, shim_cli
from tests.e2e.wheels import IMPORTS

pytestmark = pytest.mark.e2e

MISMATCHED = ["gnu311", "musl39"]
ALL_OK = {dist: "ok" for dist in IMPORTS}


def statuses(probe: dict[str, str]) -> dict[str, str]:
    return {d: s.split()[0] for d, s in probe.items()}


def aliases_in(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.so") if p.is_symlink())


@pytest.mark.parametrize("flavour", MISMATCHED)
def test_heal_command_fixes_real_wheels(
    flavour: str, make_venv: object, musl_wheels: dict[str, list[Path]], deps_target: dict[str, Path]
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.pip("install", "--no-index", *map(str, musl_wheels[version]))

    before = venv.probe()
    for dist, status in before.items():
        assert status.startswith("ModuleNotFoundError"), (dist, status)

    doctor = shim_cli(venv, "doctor", "--json", deps=deps_target[version])
    assert doctor.returncode == 1, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["interpreter"]["libc"] == "musl"
    assert report["interpreter"]["libc_version"] == "1.2.5"
    broken = {Path(a["target"]).name for a in report["aliases"] if a["action"] == "would-create"}
    assert len(broken) == len(IMPORTS), broken

    heal = shim_cli(venv, "heal", "--json", deps=deps_target[version])
    assert heal.returncode == 0, heal.stdout + heal.stderr
    created = json.loads(heal.stdout)["aliases"]
    # One alias per distribution, each named for the distribution that owns the file.
    assert sorted(canonicalize_name(a["distribution"]) for a in created) == sorted(IMPORTS)
    for a in created:
        _top, mod = IMPORTS[canonicalize_name(a["distribution"])]
        assert Path(a["target"]).name.startswith(mod.rsplit(".", 1)[-1] + "."), a
    assert {a["action"] for a in created} == {"created"}

    after = venv.probe()
    assert statuses(after) == ALL_OK, after
    links = aliases_in(venv.site)
    assert len(links) == len(IMPORTS)
    for link in links:
        target = os.readlink(link)
        assert target.startswith("./") and "/" not in target[2:]
        assert str(link.relative_to(venv.site)) in record_rows(venv.site)

    assert json.loads(shim_cli(venv, "doctor", "--json", deps=deps_target[version]).stdout)["problems"] == []
    assert shim_cli(venv, "check", deps=deps_target[version]).returncode == 0
    again = json.loads(shim_cli(venv, "heal", "--json", deps=deps_target[version]).stdout)
    assert {a["action"] for a in again["aliases"]} == {"present"}

    # --force-reinstall and uninstall remove the recorded aliases with their distribution.
    venv.pip("install", "--no-index", "--force-reinstall", "--no-deps", *map(str, musl_wheels[version]))
    assert aliases_in(venv.site) == []
    assert shim_cli(venv, "heal", deps=deps_target[version]).returncode == 0
    assert len(aliases_in(venv.site)) == len(IMPORTS)
    venv.pip("uninstall", "-y", "markupsafe", "pyyaml", "msgpack", "rpds-py", "ujson")
    assert aliases_in(venv.site) == []
    assert not list(venv.site.rglob("*.so"))


@pytest.mark.parametrize("flavour", MISMATCHED)
def test_installed_shim_heals_new_installs_transparently(
    flavour: str, make_venv: object, musl_wheels: dict[str, list[Path]], shim_wheelhouse: dict[str, Path]
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    assert (venv.site / "soabi_shim-startup.pth").is_file()
    # A separate process, with the hook off (so pip's exit does not heal; see test_startup_musl.py).
    venv.pip("install", "--no-index", *map(str, musl_wheels[version]), env={"SOABI_SHIM_DISABLE": "1"})

    # The site dir is read-only for this user: the fallback serves, nothing is written or printed.
    def stamps() -> list[str]:
        return sorted(n for n in os.listdir(venv.site / "soabi_shim") if n.startswith(("_ok.", "_fb.")))

    stamp_before = stamps()  # written at soabi-shim's own install, before the wheels came
    ro = venv.run("import markupsafe._speedups, sys; print('ok')", nobody=True)
    assert (ro.stdout, ro.stderr, ro.returncode) == ("ok\n", "", 0)
    assert statuses(venv.probe(nobody=True)) == ALL_OK
    assert aliases_in(venv.site) == []
    assert stamps() == stamp_before

    # Opted out: nothing happens at all.
    off = venv.probe(env={"SOABI_SHIM_DISABLE": "1"})
    assert all(s.startswith("ModuleNotFoundError") for s in off.values()), off
    fallback_only = venv.probe(env={"SOABI_SHIM_FALLBACK_ONLY": "1"})
    assert statuses(fallback_only) == ALL_OK
    assert aliases_in(venv.site) == []

    # A new interpreter that may write: heals at start-up, silently, recorded in RECORD.
    silent = venv.run("pass")
    assert (silent.stdout, silent.stderr) == ("", "")
    assert len(aliases_in(venv.site)) == len(IMPORTS)
    assert all(str(p.relative_to(venv.site)) in record_rows(venv.site) for p in aliases_in(venv.site))
    assert stamps() == [f"_ok.{os.stat(venv.site).st_mtime_ns}"]
    # With the hook disabled the aliases alone make everything load.
    assert statuses(venv.probe(env={"SOABI_SHIM_DISABLE": "1"})) == ALL_OK

    # Upgrade-like reinstall: healed again at the next start, no leftovers.
    venv.pip(
        "install",
        "--no-index",
        "--force-reinstall",
        "--no-deps",
        str(musl_wheels[version][0]),
        env={"SOABI_SHIM_DISABLE": "1"},
    )
    assert len(aliases_in(venv.site)) == len(IMPORTS) - 1
    assert statuses(venv.probe()) == ALL_OK
    assert len(aliases_in(venv.site)) == len(IMPORTS)

    # Uninstalling soabi-shim removes the hook; the recorded aliases stay valid.
    venv.pip("uninstall", "-y", "soabi-shim")
    assert not list(venv.site.glob("soabi_shim*"))
    assert statuses(venv.probe()) == ALL_OK
    venv.pip("uninstall", "-y", "markupsafe", "pyyaml", "msgpack", "rpds-py", "ujson")
    assert aliases_in(venv.site) == []


def test_native_musl_gets_no_alias(
    make_venv: object,
    musl_wheels: dict[str, list[Path]],
    shim_wheelhouse: dict[str, Path],
    deps_target: dict[str, Path],
) -> None:
    venv: MuslVenv = make_venv("musl311")  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse["3.11"])
    venv.pip("install", "--no-index", *map(str, musl_wheels["3.11"]))
    assert statuses(venv.probe()) == ALL_OK
    check = shim_cli(venv, "check", "--json", deps=deps_target["3.11"])
    assert check.returncode == 0
    assert json.loads(check.stdout)["aliases"] == []
    assert aliases_in(venv.site) == []
    doctor = shim_cli(venv, "doctor", "--json", deps=deps_target["3.11"])
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["aliases"] == []


def test_glibc_built_extension_is_refused(make_venv: object, deps_target: dict[str, Path], tmp_path: Path) -> None:
    """Compiled by the system (glibc) gcc, named for the musl interpreter: refused."""
    venv: MuslVenv = make_venv("musl39")  # type: ignore[operator]
    facts = json.loads(
        venv.run(
            "import json, sysconfig; "
            "print(json.dumps([sysconfig.get_paths()['include'], sysconfig.get_config_var('EXT_SUFFIX')]))"
        ).stdout
    )
    include, ext_suffix = facts
    twin = ext_suffix.replace("-linux-musl.so", "-linux-gnu.so")
    assert twin != ext_suffix
    so = compile_extension(tmp_path / "build", "_speed", twin, compiler="gcc", include=include)
    pkg = venv.site / "glibcbuilt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / so.name).write_bytes(so.read_bytes())
    dist = venv.site / "glibcbuilt-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: glibcbuilt\nVersion: 1.0\n")
    (dist / "RECORD").write_text(
        f"glibcbuilt/__init__.py,,\nglibcbuilt/{so.name},,\nglibcbuilt-1.0.dist-info/RECORD,,\n"
    )

    heal = shim_cli(venv, "heal", "--json", deps=deps_target["3.9"])
    assert heal.returncode == 1
    (problem,) = json.loads(heal.stdout)["problems"]
    assert problem["path"] == str(pkg / so.name)
    assert problem["reason"] == "linked against glibc (needs libc.so.6), interpreter runs on musl"
    assert not (pkg / f"_speed{ext_suffix}").exists()


def test_python_option_from_the_host(make_venv: object, musl_wheels: dict[str, list[Path]]) -> None:
    """``--python``: the glibc host heals the musl interpreter's tree."""
    venv: MuslVenv = make_venv("gnu311")  # type: ignore[operator]
    venv.pip("install", "--no-index", *map(str, musl_wheels["3.11"]))
    from tests.conftest import soabi_shim

    out = soabi_shim("heal", "--json", "--python", str(venv.python))
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["interpreter"]["libc"] == "musl"
    assert len([a for a in report["aliases"] if a["action"] == "created"]) == len(IMPORTS)
    assert statuses(venv.probe()) == ALL_OK
    assert sys.platform.startswith("linux")
    assert subprocess.run([str(venv.python), "-c", "import ujson"], check=False).returncode == 0


@pytest.mark.parametrize("flavour", MISMATCHED)
def test_uv_installs_are_healed_and_its_cache_untouched(
    flavour: str,
    make_venv: object,
    musl_wheels: dict[str, list[Path]],
    shim_wheelhouse: dict[str, Path],
    tmp_path: Path,
) -> None:
    import shutil

    from tests.integration.test_installers import tree_digest

    uv = shutil.which("uv")
    assert uv, "uv is a test dependency"
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    env = dict(os.environ, UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_NO_PROGRESS="1")
    out = subprocess.run(
        [uv, "pip", "install", "--python", str(venv.python), "--no-index", *map(str, musl_wheels[version])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    cache = tree_digest(tmp_path / "uv-cache")
    assert statuses(venv.probe()) == ALL_OK  # the first start heals (uv never runs this interpreter after)
    assert len(aliases_in(venv.site)) == len(IMPORTS)
    assert tree_digest(tmp_path / "uv-cache") == cache
    un = subprocess.run(
        [uv, "pip", "uninstall", "--python", str(venv.python), *IMPORTS],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert un.returncode == 0, un.stderr
    assert aliases_in(venv.site) == []


@pytest.mark.parametrize("flavour", MISMATCHED)
def test_install_command_on_musl(
    flavour: str, make_venv: object, musl_wheels: dict[str, list[Path]], deps_target: dict[str, Path], tmp_path: Path
) -> None:
    """``soabi-shim install`` (pypa/installer 0.7 on 3.9, 1.x on 3.11) with real wheels."""
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    prefix = tmp_path / "prefix"
    out = shim_cli(venv, "install", "--prefix", str(prefix), *map(str, musl_wheels[version]), deps=deps_target[version])
    assert out.returncode == 0, out.stdout + out.stderr
    site = next(prefix.glob("lib/python3.*/site-packages"))
    assert len(aliases_in(site)) == len(IMPORTS)
    for link in aliases_in(site):
        assert str(link.relative_to(site)) in record_rows(site)
    probe = venv.run(
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        + "import markupsafe._speedups, yaml._yaml, msgpack._cmsgpack, rpds, ujson"
    )
    assert probe.returncode == 0, probe.stderr
