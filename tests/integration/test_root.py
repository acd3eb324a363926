"""``--root ROOT``: heal, check, undo and doctor on a target root file system
from the build host, with the interpreter's facts read from the image as data.

The images are built in ``tmp_path``: an aarch64 musl interpreter binary
(a hand-made ELF: it could not run here anyway), its ``_sysconfigdata`` as
text, and site-packages with a distribution whose extension is named for the
other libc.  Nothing in them can run on this x86_64 host, which is the point.
"""

from __future__ import annotations

import importlib.machinery
import io
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any, Optional

import pytest

from soabi_shim import cli
from soabi_shim.errors import UsageError
from soabi_shim.facts import gather_facts
from soabi_shim.image import accepted_suffixes, image_facts, read_sysconfigdata, resolve_in_root
from tests.unit.test_elf import EM_AARCH64, EM_X86_64, ET_EXEC, make_elf

GNU = ".cpython-311-aarch64-linux-gnu.so"  # a cross-built 3.11 says -gnu on musl
MUSL = ".cpython-311-aarch64-linux-musl.so"  # the musllinux wheels say -musl
SITE = "usr/lib/python3.11/site-packages"


def sysconfigdata(ext_suffix: Optional[str] = GNU, **extra: Any) -> str:
    values: dict[str, Any] = {
        "ABIFLAGS": "",
        "SOABI": ext_suffix[1:-3] if ext_suffix else None,
        "MULTIARCH": "aarch64-linux-gnu",
        "VERSION": "3.11",
        "ALT_SOABI": 0,
        "Py_GIL_DISABLED": 0,
        "LIBDIR": "/usr/lib",
        "INSTSONAME": "libpython3.11.so.1.0",
        "LDLIBRARY": "libpython3.11.so",
    }
    if ext_suffix:
        values["EXT_SUFFIX"] = ext_suffix
    values.update(extra)
    return "# system configuration generated and used by the sysconfig module\nbuild_time_vars = " + repr(values) + "\n"


def interpreter_elf(machine: int = EM_AARCH64, interp: str = "/lib/ld-musl-aarch64.so.1") -> bytes:
    elf = make_elf(machine=machine, elf_type=ET_EXEC, interp=interp, needed=("libpython3.11.so.1.0", "libc.so"))
    return elf + b"\x003.11.9\x00"  # PY_VERSION, as in the real binary's .rodata


def add_dist(site: Path, name: str, files: dict[str, bytes]) -> Path:
    dist_info = site / f"{name}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    rows = [f"{name}-1.0.dist-info/METADATA,,", f"{name}-1.0.dist-info/RECORD,,"]
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(f"{rel},,{len(data)}")
    (dist_info / "RECORD").write_text("\n".join(rows) + "\n")
    return dist_info


def make_image(root: Path, *, python: str = "usr/bin/python3.11", config: Optional[str] = None) -> Path:
    """An aarch64 musl root file system with one distribution to heal."""
    exe = root / python
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_bytes(interpreter_elf())
    exe.chmod(0o755)
    lib = root / "usr/lib/python3.11"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "_sysconfigdata__linux_aarch64-linux-gnu.py").write_text(sysconfigdata() if config is None else config)
    site = root / SITE
    site.mkdir(parents=True, exist_ok=True)
    add_dist(site, "demo", {"demo/__init__.py": b"", f"demo/_speed{MUSL}": make_elf(machine=EM_AARCH64)})
    return root


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: kind and content or link target."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                state[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                state[str(p)] = ("file", p.read_bytes().hex())
            else:
                state[str(p)] = ("dir", "")
    return state


# --------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------


def test_resolver_keeps_plain_paths(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    assert resolve_in_root(str(tmp_path), "/a/b") == str(tmp_path / "a/b")
    assert resolve_in_root(str(tmp_path), "a/./b/") == str(tmp_path / "a/b")
    assert resolve_in_root(str(tmp_path), "/a/missing/x") == str(tmp_path / "a/missing/x")


def test_resolver_dotdot_never_leaves_root(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert resolve_in_root(str(tmp_path), "/../../..") == str(tmp_path)
    assert resolve_in_root(str(tmp_path), "/a/../../../etc/passwd") == str(tmp_path / "etc/passwd")


def test_resolver_absolute_symlink_resolves_against_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib64").mkdir(parents=True)
    os.symlink("/usr/lib64", tmp_path / "usr/lib")  # /usr/lib64 exists on the host too
    assert resolve_in_root(str(tmp_path), "/usr/lib/x") == str(tmp_path / "usr/lib64/x")
    os.symlink("/", tmp_path / "top")
    assert resolve_in_root(str(tmp_path), "/top/top/usr") == str(tmp_path / "usr")


def test_resolver_relative_symlink_escape_is_clamped(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    os.symlink("../../../../../../../etc", tmp_path / "a/b/up")
    assert resolve_in_root(str(tmp_path), "/a/b/up/passwd") == str(tmp_path / "etc/passwd")


def test_resolver_symlink_loop_is_an_error(tmp_path: Path) -> None:
    os.symlink("/loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    with pytest.raises(UsageError, match="too many levels"):
        resolve_in_root(str(tmp_path), "/loop1/x")


# --------------------------------------------------------------------------
# Facts from the image
# --------------------------------------------------------------------------


def test_facts_from_image(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    facts = image_facts(str(root))
    assert facts.executable == "/usr/bin/python3.11"
    assert facts.root == str(root)
    assert facts.version == (3, 11, 9)
    assert facts.ext_suffix == GNU
    assert facts.extension_suffixes == (GNU, ".abi3.so", ".so")
    assert (facts.libc, facts.libc_evidence) == ("musl", "PT_INTERP /lib/ld-musl-aarch64.so.1")
    assert facts.elf is not None and facts.elf.machine == EM_AARCH64
    assert facts.site_dirs == (str(root / SITE),)
    assert facts.user_site is None


def test_facts_of_this_interpreter_read_as_an_image_match_the_live_ones() -> None:
    """ROOT=/ and the running interpreter's own file: the same facts as asking it."""
    exe = os.path.realpath(sys.executable)
    if not os.path.basename(exe).startswith(f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        pytest.skip(f"{exe} is not named pythonX.Y")  # pragma: no cover - every CPython install is
    facts = image_facts("/", exe)
    live = gather_facts()
    assert facts.extension_suffixes == tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert (facts.soabi, facts.ext_suffix, facts.libc) == (live.soabi, live.ext_suffix, live.libc)
    assert facts.version == tuple(sys.version_info[:3])
    base_site = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]
    assert os.path.realpath(base_site) in [os.path.realpath(d) for d in facts.site_dirs]


@pytest.mark.parametrize(
    ("version", "values", "expected"),
    [
        ((3, 11), {"SOABI": "cpython-311-x86_64-linux-musl"}, [".cpython-311-x86_64-linux-musl.so", ".abi3.so", ".so"]),
        (
            (3, 13),
            {"SOABI": "cpython-313t-aarch64-linux-musl", "Py_GIL_DISABLED": 1},
            [".cpython-313t-aarch64-linux-musl.so", ".abi3.so", ".so"],  # as 3.13.5's musl313t lists them
        ),
        (
            (3, 14),
            {"SOABI": "cpython-314t-aarch64-linux-musl", "Py_GIL_DISABLED": 1},
            [".cpython-314t-aarch64-linux-musl.so", ".so"],
        ),
        (
            (3, 12),
            {"SOABI": "cpython-312d-x86_64-linux-gnu", "ALT_SOABI": "cpython-312-x86_64-linux-gnu"},
            [".cpython-312d-x86_64-linux-gnu.so", ".cpython-312-x86_64-linux-gnu.so", ".abi3.so", ".so"],
        ),
        (
            (3, 15),
            {"SOABI": "cpython-315-x86_64-linux-musl", "MULTIARCH": "x86_64-linux-musl"},
            [".cpython-315-x86_64-linux-musl.so", ".abi3-x86_64-linux-musl.so", ".abi3.so", ".so"],
        ),
        ((3, 10), {"SOABI": "pypy310-pp73-x86_64-linux-gnu"}, [".pypy310-pp73-x86_64-linux-gnu.so", ".so"]),
    ],
)
def test_accepted_suffixes(version: tuple[int, int], values: dict[str, Any], expected: list[str]) -> None:
    values["EXT_SUFFIX"] = f".{values['SOABI']}.so"
    assert list(accepted_suffixes(version, values)) == expected


def test_sysconfigdata_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n" + sysconfigdata()
    root = make_image(tmp_path / "img", config=config)
    assert image_facts(str(root)).ext_suffix == GNU
    assert not marker.exists()


def test_sysconfigdata_with_a_call_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "_sysconfigdata_x.py"
    path.write_text(f"build_time_vars = dict(EXT_SUFFIX={GNU!r})\n")
    with pytest.raises(UsageError, match="not a literal"):
        read_sysconfigdata(str(path))


# --------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------


def test_heal_root_makes_the_alias_the_target_would(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    site = root / SITE
    code, out, err = run("check", "--root", str(root))
    assert (code, err) == (1, "")
    assert "would-create" in out
    assert f"--root {root}" in out  # the fix line names the image
    assert not (site / f"demo/_speed{GNU}").exists()

    code, out, err = run("heal", "--root", str(root))
    assert (code, err) == (0, ""), out
    alias = site / f"demo/_speed{GNU}"
    link = os.readlink(alias)  # relative, beside its target, as the target's own heal makes it
    assert not os.path.isabs(link) and os.path.normpath(link) == f"_speed{MUSL}"
    assert f"demo/_speed{GNU},," in (site / "demo-1.0.dist-info/RECORD").read_text().splitlines()

    assert run("check", "--root", str(root))[0] == 0
    code, out, _ = run("undo", "--root", str(root))
    assert code == 0 and "removed" in out
    assert not os.path.lexists(alias)
    assert f"demo/_speed{GNU}" not in (site / "demo-1.0.dist-info/RECORD").read_text()


def test_doctor_and_json_under_root(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    code, out, _ = run("doctor", "--root", str(root))
    assert code == 1
    assert "libc:            musl" in out and f"root:            {root}" in out
    code, out, _ = run("check", "--json", "--root", str(root))
    data = json.loads(out)
    live = json.loads(run("check", "--json", str(tmp_path))[1])  # a live run: the same schema
    assert set(data) == set(live) and set(data["interpreter"]) == set(live["interpreter"])
    assert data["interpreter"]["root"] == str(root)
    assert [a["action"] for a in data["aliases"]] == ["would-create"]


def test_paths_under_root_are_inside_the_image(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    code, out, _ = run("heal", "--root", str(root), "/" + SITE)
    assert code == 0, out
    assert (root / SITE / f"demo/_speed{GNU}").is_symlink()


def test_merged_usr_with_absolute_symlinks(tmp_path: Path) -> None:
    """/usr/lib -> /usr/lib64 and /usr/bin/python3 -> /usr/bin/python3.11, absolute: resolved in the image."""
    root = tmp_path / "img"
    make_image(root)
    os.rename(root / "usr/lib", root / "usr/lib64")
    os.symlink("/usr/lib64", root / "usr/lib")
    os.symlink("/usr/bin/python3.11", root / "usr/bin/python3")
    facts = image_facts(str(root), "/usr/bin/python3")
    assert facts.site_dirs == (str(root / "usr/lib64/python3.11/site-packages"),)
    code, out, _ = run("heal", "--root", str(root))  # python3 and python3.11 are one interpreter
    assert code == 0, out
    assert (root / "usr/lib64/python3.11/site-packages" / f"demo/_speed{GNU}").is_symlink()


def test_site_dir_symlink_out_of_the_image_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "img"
    make_image(root)
    outside = tmp_path / "outside"
    add_dist(outside, "evil", {f"evil/_x{MUSL}": make_elf(machine=EM_AARCH64)})
    os.symlink("../../../../../../../../../" + str(outside).lstrip("/"), root / "usr/lib/python3.11/dist-packages")
    os.symlink(str(outside), root / "usr/local")  # an absolute link: /<outside> inside the image
    before = snapshot(outside)
    facts = image_facts(str(root))
    for d in facts.site_dirs:
        assert d.startswith(str(root) + os.sep)
    run("heal", "--root", str(root))
    assert snapshot(outside) == before


def test_foreign_machine_extension_is_refused(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    add_dist(root / SITE, "x86", {f"x86/_c{MUSL}": make_elf(machine=EM_X86_64)})
    code, out, _ = run("heal", "--root", str(root))
    assert code == 1
    assert "x86_64" in out and "aarch64" in out
    assert "1 alias not made" in out
    assert not os.path.lexists(root / SITE / f"x86/_c{GNU}")


def test_several_interpreters_need_python(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    other = root / "usr/local/bin/python3.12"
    other.parent.mkdir(parents=True)
    other.write_bytes(interpreter_elf())
    code, _, err = run("check", "--root", str(root))
    assert code == 2
    assert "several interpreters" in err and "/usr/bin/python3.11" in err and "/usr/local/bin/python3.12" in err
    assert run("check", "--root", str(root), "--python", "/usr/bin/python3.11")[0] == 1


def _bad(tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    root = tmp_path / "img"
    if case == "missing root":
        return root, []
    make_image(root)
    lib = root / "usr/lib/python3.11"
    config = lib / "_sysconfigdata__linux_aarch64-linux-gnu.py"
    if case == "no interpreter":
        (root / "usr/bin/python3.11").unlink()
    elif case == "unparsable sysconfigdata":
        config.write_text("build_time_vars = {'EXT_SUFFIX': \n")
    elif case == "no EXT_SUFFIX":
        config.write_text(sysconfigdata(None))
    elif case == "no sysconfigdata":
        config.unlink()
    elif case == "not ELF":
        (root / "usr/bin/python3.11").write_text("#!/bin/sh\nexec true\n")
    elif case == "--python not in root":
        return root, ["--python", "/usr/bin/python9.9"]
    elif case == "--python escapes":
        return root, ["--python", "/../../../../" + sys.executable]
    return root, []


BAD = [
    "missing root",
    "no interpreter",
    "unparsable sysconfigdata",
    "no EXT_SUFFIX",
    "no sysconfigdata",
    "not ELF",
    "--python not in root",
    "--python escapes",
]


@pytest.mark.parametrize("command", ["heal", "check", "undo", "doctor"])
@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_error_line_exit_2_nothing_written(tmp_path: Path, case: str, command: str) -> None:
    root, extra = _bad(tmp_path, case)
    before = snapshot(tmp_path)
    code, out, err = run(command, "--root", str(root), *extra)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("ERROR "), err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_bad_input_with_json_is_an_error_object(tmp_path: Path) -> None:
    code, out, err = run("heal", "--json", "--root", str(tmp_path / "nothing"))
    assert code == 2
    assert json.loads(out)["error"] == err[len("ERROR ") :].strip()
