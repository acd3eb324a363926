"""End to end on musl-linked CPython 3.13 and free-threaded 3.13t (trixie's source).

* ``musl313`` (``cpython-313-x86_64-linux-musl``) and ``musl313t``
  (``cpython-313t-x86_64-linux-musl``, ``--disable-gil``): native musl builds.
  Real cp313 / cp313t musllinux_1_2 wheels from PyPI carry ``-musl`` names and
  load as they are: soabi-shim must create nothing.
* Files for another ABI flag (``t`` or not), another version or another ABI,
  dropped in under ``-gnu`` names, are never aliased; a file that differs only
  in the libc part is (the control, so these tests can fail).
* Every interpreter of the matrix: the suffix model parses and round-trips
  every entry of its own ``importlib.machinery.EXTENSION_SUFFIXES``.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from soabi_shim.errors import SuffixError
from soabi_shim.suffixes import parse_suffix, twin_suffixes
from tests.e2e.conftest import FLAVOURS, MuslVenv, record_rows, shim_cli
from tests.e2e.test_musl import aliases_in, statuses
from tests.e2e.wheels import imports

pytestmark = pytest.mark.e2e

FLAVOURS_313 = ["musl313", "musl313t"]
OTHER = {"musl313": "musl313t", "musl313t": "musl313"}
UNTAGGED = {".so", ".abi3.so"}


def interpreter_facts(python: Path) -> dict[str, object]:
    code = (
        "import importlib.machinery, json, sys, sysconfig\n"
        "print(json.dumps({'suffixes': importlib.machinery.EXTENSION_SUFFIXES,"
        " 'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), 'soabi': sysconfig.get_config_var('SOABI'),"
        " 'version': list(sys.version_info[:2]), 'abiflags': sys.abiflags,"
        " 'gil_disabled': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))"
    )
    out = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, check=True)
    facts: dict[str, object] = json.loads(out.stdout)
    return facts


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_suffix_model_round_trips_the_interpreters_own_suffixes(flavour: str, interpreters: dict[str, Path]) -> None:
    facts = interpreter_facts(interpreters[flavour])
    suffixes = facts["suffixes"]
    assert isinstance(suffixes, list) and facts["ext_suffix"] in suffixes
    version = tuple(facts["version"])  # type: ignore[arg-type]
    libc = "gnu" if flavour.startswith("gnu") else "musl"
    tagged = [s for s in suffixes if s not in UNTAGGED]
    assert tagged == [facts["ext_suffix"]], suffixes
    for text in suffixes:
        if text in UNTAGGED:
            with pytest.raises(SuffixError):
                parse_suffix(text)
            continue
        parsed = parse_suffix(text)
        assert str(parsed) == text
        assert parse_suffix(str(parsed)) == parsed
        assert (parsed.implementation, parsed.version, parsed.arch, parsed.libc) == (
            "cpython",
            version,
            "x86_64",
            libc,
        )
        assert parsed.flags == facts["abiflags"]
        assert parsed.abi == facts["soabi"].rsplit("-", 3)[0]  # type: ignore[union-attr]
        twins = twin_suffixes(parsed)
        assert [str(t) for t in twins] == [
            text.replace(f"-linux-{libc}.so", f"-linux-{'musl' if libc == 'gnu' else 'gnu'}.so")
        ]
    # Every built version lists the untagged .abi3.so, free-threaded 3.13 too: 3.13.5's
    # Python/dynload_shlib.c puts ".abi" PYTHON_ABI_STRING ".so" in _PyImport_DynLoadFiletab
    # unconditionally.  It has no libc part, so it is never a twin (SuffixError above).
    assert suffixes == [facts["ext_suffix"], ".abi3.so", ".so"]
    assert facts["gil_disabled"] == flavour.endswith("t")


@pytest.mark.parametrize("flavour", FLAVOURS_313)
def test_real_wheels_load_with_zero_aliases(
    flavour: str,
    make_venv: object,
    musl_wheels: dict[str, list[Path]],
    shim_wheelhouse: dict[str, Path],
    deps_target: dict[str, Path],
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    venv.install_shim(shim_wheelhouse[version])
    assert (venv.site / "soabi_shim-startup.pth").is_file()
    venv.pip("install", "--no-index", *map(str, musl_wheels[version]))
    for wheel in musl_wheels[version]:
        names = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so") and ".cpython-" in n]
        assert names and all(f".cpython-{version.replace('.', '')}-x86_64-linux-musl.so" in n for n in names)

    assert statuses(venv.probe()) == {d: "ok" for d in imports(version)}
    assert aliases_in(venv.site) == []
    for command in ("check", "heal", "doctor"):
        out = shim_cli(venv, command, "--json", deps=deps_target[version])
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert (report["aliases"], report["problems"]) == ([], []), report
        assert report["interpreter"]["libc"] == "musl"
        assert report["interpreter"]["soabi"] == f"cpython-{version.replace('.', '')}-x86_64-linux-musl"
    assert aliases_in(venv.site) == []


def _extension(wheel: Path, dest: Path) -> Path:
    """Extract markupsafe's real extension module from wheel into dest."""
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.startswith("markupsafe/_speedups.") and n.endswith(".so")]
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / Path(name).name
        out.write_bytes(zf.read(name))
    return out


def _markupsafe(wheels: list[Path]) -> Path:
    (wheel,) = [w for w in wheels if w.name.lower().startswith("markupsafe-")]
    return wheel


@pytest.mark.parametrize("flavour", FLAVOURS_313)
def test_other_flag_version_or_abi_is_never_aliased(
    flavour: str,
    make_venv: object,
    musl_wheels: dict[str, list[Path]],
    deps_target: dict[str, Path],
    tmp_path: Path,
) -> None:
    version = FLAVOURS[flavour]
    own = version.replace(".", "")  # "313" or "313t"
    other = FLAVOURS[OTHER[flavour]].replace(".", "")
    venv: MuslVenv = make_venv(flavour)  # type: ignore[operator]
    own_so = _extension(_markupsafe(musl_wheels[version]), tmp_path / "own")
    other_so = _extension(_markupsafe(musl_wheels[FLAVOURS[OTHER[flavour]]]), tmp_path / "other")
    old_so = _extension(_markupsafe(musl_wheels["3.11"]), tmp_path / "old")
    drops = {
        # package: (real file, the -gnu name it is dropped in under)
        "control": (own_so, f"_speedups.cpython-{own}-x86_64-linux-gnu.so"),
        "otherflag": (other_so, f"_speedups.cpython-{other}-x86_64-linux-gnu.so"),
        "otherversion": (old_so, "_speedups.cpython-311-x86_64-linux-gnu.so"),
        "nextversion": (own_so, f"_speedups.cpython-314{own[3:]}-x86_64-linux-gnu.so"),
        "debugabi": (own_so, f"_speedups.cpython-{own}d-x86_64-linux-gnu.so"),
        "pypyabi": (own_so, "_speedups.pypy310-pp73-x86_64-linux-gnu.so"),
        "stableabi": (own_so, "_speedups.abi3-x86_64-linux-gnu.so"),
        "stableabit": (own_so, "_speedups.abi3t-x86_64-linux-gnu.so"),
    }
    rows = []
    for pkg, (real, name) in drops.items():
        d = venv.site / "dropin" / pkg
        d.mkdir(parents=True)
        (d / "__init__.py").write_text("")
        (d / name).write_bytes(real.read_bytes())
        rows += [f"dropin/{pkg}/__init__.py,,", f"dropin/{pkg}/{name},,"]
    (venv.site / "dropin" / "__init__.py").write_text("")
    info = venv.site / "dropin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dropin\nVersion: 1.0\n")
    (info / "RECORD").write_text("\n".join(["dropin/__init__.py,,", *rows, "dropin-1.0.dist-info/RECORD,,", ""]))

    heal = shim_cli(venv, "heal", "--json", deps=deps_target[version])
    assert heal.returncode == 0, heal.stdout + heal.stderr
    report = json.loads(heal.stdout)
    assert [(Path(a["alias"]).relative_to(venv.site).as_posix(), a["action"]) for a in report["aliases"]] == [
        (f"dropin/control/_speedups.cpython-{own}-x86_64-linux-musl.so", "created")
    ]
    assert [p.relative_to(venv.site).as_posix() for p in aliases_in(venv.site)] == [
        f"dropin/control/_speedups.cpython-{own}-x86_64-linux-musl.so"
    ]
    assert f"dropin/control/_speedups.cpython-{own}-x86_64-linux-musl.so" in record_rows(venv.site)
    for pkg in drops:
        assert sorted(p.name for p in (venv.site / "dropin" / pkg).iterdir()) == sorted(
            [
                "__init__.py",
                drops[pkg][1],
                *([f"_speedups.cpython-{own}-x86_64-linux-musl.so"] if pkg == "control" else []),
            ]
        )
    probe = venv.run(
        "import importlib\n"
        f"for pkg in {sorted(drops)!r}:\n"
        "    try:\n"
        "        importlib.import_module(f'dropin.{pkg}._speedups'); print(pkg, 'ok')\n"
        "    except ImportError as e:\n"
        "        print(pkg, type(e).__name__)\n",
        env={"SOABI_SHIM_DISABLE": "1"},
    )
    loaded = dict(line.split() for line in probe.stdout.splitlines())
    assert loaded == {pkg: "ok" if pkg == "control" else "ModuleNotFoundError" for pkg in drops}, probe.stderr
