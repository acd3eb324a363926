"""The heal engine end to end on this (glibc) machine, with a real extension
compiled by gcc, named with the libc twin (``-linux-musl``), packed as a
real wheel and installed by pip into a real venv."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, Venv, soabi_shim

IMPORT = "import demo._speed as m; print(m.add(2, 3), m.__file__)"


def record_rows(site: Path, dist: str = "demo-1.0") -> list[list[str]]:
    with open(site / f"{dist}.dist-info" / "RECORD", newline="") as f:
        return list(csv.reader(f))


def test_full_cycle(venv: Venv, demo_wheel: Path) -> None:
    venv.pip("install", str(demo_wheel))
    real = venv.site / "demo" / f"_speed{MUSL_SUFFIX}"
    alias = venv.site / "demo" / f"_speed{EXT_SUFFIX}"
    real_bytes = real.read_bytes()

    before = venv.run(IMPORT)
    assert before.returncode != 0
    assert "No module named 'demo._speed'" in before.stderr

    check = soabi_shim("check", str(venv.site))
    assert check.returncode == 1, check.stdout + check.stderr
    assert "would-create" in check.stdout
    assert not alias.exists() and not alias.is_symlink()

    heal = soabi_shim("heal", str(venv.site))
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert alias.is_symlink()
    assert os.readlink(alias) == f"./{real.name}"  # relative, same directory
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] in record_rows(venv.site)

    after = venv.run(IMPORT)
    assert after.returncode == 0, after.stderr
    value, file = after.stdout.split()
    assert value == "5"
    assert file.endswith(f"_speed{EXT_SUFFIX}")

    again = soabi_shim("heal", "--json", str(venv.site))
    assert again.returncode == 0
    actions = [a["action"] for a in json.loads(again.stdout)["aliases"]]
    assert actions == ["present"]
    rows = record_rows(venv.site)
    assert sum(r[0] == f"demo/_speed{EXT_SUFFIX}" for r in rows) == 1

    undo = soabi_shim("undo", str(venv.site))
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert not alias.exists() and not alias.is_symlink()
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] not in record_rows(venv.site)
    assert real.read_bytes() == real_bytes

    assert soabi_shim("heal", str(venv.site)).returncode == 0
    assert alias.is_symlink()
    venv.pip("uninstall", "-y", "demo")
    assert not (venv.site / "demo").exists()
    assert not list(venv.site.glob("demo-*"))


def test_upgrade_and_force_reinstall_leave_no_alias(venv: Venv, demo_wheel: Path, tmp_path: Path) -> None:
    from tests.conftest import make_wheel

    venv.pip("install", str(demo_wheel))
    assert soabi_shim("heal", str(venv.site)).returncode == 0
    # 2.0 ships the interpreter's own name: no alias may survive the upgrade.
    so = (venv.site / "demo" / f"_speed{MUSL_SUFFIX}").read_bytes()
    v2 = make_wheel(tmp_path / "w2", "demo", "2.0", {"demo/__init__.py": b"", f"demo/_speed{EXT_SUFFIX}": so})
    venv.pip("install", str(v2))
    names = sorted(p.name for p in (venv.site / "demo").iterdir() if p.name != "__pycache__")
    assert names == ["__init__.py", f"_speed{EXT_SUFFIX}"]
    assert not (venv.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()

    venv.pip("install", "--force-reinstall", str(demo_wheel))
    assert not (venv.site / "demo" / f"_speed{EXT_SUFFIX}").exists()
    assert soabi_shim("heal", str(venv.site)).returncode == 0
    venv.pip("install", "--force-reinstall", str(demo_wheel))
    assert not (venv.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()


def test_python_option_heals_other_interpreter(venv: Venv, demo_wheel: Path) -> None:
    venv.pip("install", str(demo_wheel))
    out = soabi_shim("heal", "--json", "--python", str(venv.python))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["interpreter"]["executable"] == str(venv.python)
    assert [Path(s).resolve() for s in report["sites"]] == [venv.site.resolve()]
    assert [a["action"] for a in report["aliases"]] == ["created"]
    assert venv.run(IMPORT).returncode == 0


def test_json_schema(venv: Venv, demo_wheel: Path) -> None:
    venv.pip("install", str(demo_wheel))
    out = soabi_shim("heal", "--dry-run", "--json", str(venv.site))
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert set(report) >= {"interpreter", "aliases", "problems"}
    (alias,) = report["aliases"]
    assert alias == {
        "distribution": "demo",
        "version": "1.0",
        "alias": str(venv.site / "demo" / f"_speed{EXT_SUFFIX}"),
        "target": str(venv.site / "demo" / f"_speed{MUSL_SUFFIX}"),
        "action": "would-create",
    }
    assert report["problems"] == []
    assert report["interpreter"]["libc"] == "glibc"
    assert not (venv.site / "demo" / f"_speed{EXT_SUFFIX}").exists()


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (["heal", str(tmp_path / "missing")], ["check", __file__], ["frobnicate"], ["heal", "--bogus"]):
        out = soabi_shim(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("ERROR "), out.stderr
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_bad_python_exits_2_with_one_line(tmp_path: Path) -> None:
    out = soabi_shim("check", "--python", str(tmp_path / "nope"))
    assert out.returncode == 2  # bad input named by the user
    assert out.stderr.startswith(f"ERROR {tmp_path / 'nope'}: no such file")
    assert "Traceback" not in out.stderr


def test_doctor_lists_broken_then_none(venv: Venv, demo_wheel: Path) -> None:
    venv.pip("install", str(demo_wheel))
    broken = soabi_shim("doctor", str(venv.site))
    assert broken.returncode == 1
    assert f"demo/_speed{EXT_SUFFIX}" in broken.stdout
    assert "fix: " in broken.stdout and "-m soabi_shim heal" in broken.stdout
    assert "libc:" in broken.stdout and "glibc" in broken.stdout
    assert soabi_shim("heal", str(venv.site)).returncode == 0
    healthy = soabi_shim("doctor", "--json", str(venv.site))
    assert healthy.returncode == 0
    assert [a["action"] for a in json.loads(healthy.stdout)["aliases"]] == ["present"]


def test_include_unowned(venv: Venv, ext_dir: Path) -> None:
    loose = venv.site / "loose"
    loose.mkdir()
    (loose / "__init__.py").write_text("")
    (loose / f"_speed{MUSL_SUFFIX}").write_bytes((ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes())
    plain = soabi_shim("check", str(venv.site))
    assert plain.returncode == 1  # check covers files no RECORD lists (issue 12 item 3)
    assert "heal --include-unowned" in plain.stdout
    assert soabi_shim("heal", "--include-unowned", str(venv.site)).returncode == 0
    assert (loose / f"_speed{EXT_SUFFIX}").is_symlink()
    assert venv.run("import loose._speed as m; print(m.add(1, 1))").stdout.strip() == "2"
    assert soabi_shim("undo", str(venv.site)).returncode == 0
    assert (loose / f"_speed{EXT_SUFFIX}").is_symlink()  # undo without the flag leaves it
    assert soabi_shim("undo", "--include-unowned", str(venv.site)).returncode == 0
    assert not (loose / f"_speed{EXT_SUFFIX}").is_symlink()
    assert (loose / f"_speed{MUSL_SUFFIX}").is_file()


def test_api_never_prints(venv: Venv, demo_wheel: Path, capfd: object) -> None:
    import soabi_shim as api

    venv.pip("install", str(demo_wheel))
    report = api.heal([str(venv.site)])
    assert [a.action for a in report.aliases] == ["created"]
    assert report.ok
    assert api.check([str(venv.site)]).ok
    out, err = capfd.readouterr()  # type: ignore[attr-defined]
    assert out == "" and err == ""


def test_hand_made_link_is_left_alone(venv: Venv, demo_wheel: Path) -> None:
    """The psycopg#161 workaround (``ln -s``): accepted, never recorded or removed."""
    venv.pip("install", str(demo_wheel))
    alias = venv.site / "demo" / f"_speed{EXT_SUFFIX}"
    alias.symlink_to(f"_speed{MUSL_SUFFIX}")
    out = soabi_shim("heal", "--json", str(venv.site))
    assert out.returncode == 0
    assert [a["action"] for a in json.loads(out.stdout)["aliases"]] == ["present"]
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] not in record_rows(venv.site)
    assert soabi_shim("undo", str(venv.site)).returncode == 0
    assert alias.is_symlink() and os.readlink(alias) == f"_speed{MUSL_SUFFIX}"


def test_row_lost_to_an_installer_rewrite_is_restored(venv: Venv, demo_wheel: Path) -> None:
    """pip replaces RECORD at the end of an install; a heal racing it loses its row."""
    venv.pip("install", str(demo_wheel))
    record = venv.site / "demo-1.0.dist-info" / "RECORD"
    original = record.read_bytes()
    assert soabi_shim("heal", str(venv.site)).returncode == 0
    record.write_bytes(original)  # what the installer's final RECORD write does
    check = soabi_shim("check", "--json", str(venv.site))
    assert check.returncode == 1
    assert [a["action"] for a in json.loads(check.stdout)["aliases"]] == ["would-create"]
    heal = soabi_shim("heal", "--json", str(venv.site))
    assert [a["action"] for a in json.loads(heal.stdout)["aliases"]] == ["created"]
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] in record_rows(venv.site)
    # and undo finds our link even when its row is gone
    record.write_bytes(original)
    assert soabi_shim("undo", str(venv.site)).returncode == 0
    assert not (venv.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    assert record.read_bytes() == original
