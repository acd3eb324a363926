"""Concurrency and crashes: RECORD stays valid and complete whatever happens."""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soabi_shim.record import TMP_PREFIX
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, Venv, make_wheel
from tests.integration.test_refusals import install_dist


def populate(site: Path, so: bytes, count: int, files_per_dist: int = 1) -> dict[Path, bytes]:
    """``count`` distributions; return each RECORD's original bytes."""
    originals = {}
    for i in range(count):
        files = {f"pkg{i}/__init__.py": b""}
        for j in range(files_per_dist):
            files[f"pkg{i}/_m{j}{MUSL_SUFFIX}"] = so
        record = install_dist(site, f"pkg{i}", files)
        originals[record] = record.read_bytes()
    return originals


def parse_strict(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert all(len(r) == 3 for r in rows), rows
    return rows


def assert_records_sound(originals: dict[Path, bytes]) -> None:
    for record, original in originals.items():
        data = record.read_bytes()
        rows = parse_strict(data)
        original_rows = parse_strict(original)
        assert data.startswith(original), record  # every original row, bytes unchanged
        paths = [r[0] for r in rows]
        assert len(paths) == len(set(paths)), f"duplicate rows in {record}"
        assert rows[: len(original_rows)] == original_rows
        for extra in rows[len(original_rows) :]:
            assert extra[1:] == ["", ""] and extra[0].endswith(EXT_SUFFIX)


def assert_fully_healed(site: Path, originals: dict[Path, bytes], files_per_dist: int) -> None:
    for record in originals:
        name = record.parent.name.split("-")[0]
        rows = {r[0] for r in parse_strict(record.read_bytes())}
        for j in range(files_per_dist):
            alias = site / name / f"_m{j}{EXT_SUFFIX}"
            assert alias.is_symlink() and os.readlink(alias) == f"./_m{j}{MUSL_SUFFIX}"
            assert f"{name}/_m{j}{EXT_SUFFIX}" in rows
    assert not [p for p in site.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert not [p for p in site.glob("*.dist-info/*") if p.name not in ("RECORD", "METADATA")]


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.mark.slow
def test_32_concurrent_heals(tmp_path: Path, ext_dir: Path) -> None:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    originals = populate(site, so, 64, files_per_dist=2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "soabi_shim", "heal", "-q", str(site)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(32)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, (out, err)
        assert b"Traceback" not in err
    assert_records_sound(originals)
    assert_fully_healed(site, originals, 2)


@pytest.mark.slow
def test_kill_9_at_random_instants(tmp_path: Path, ext_dir: Path) -> None:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    originals = populate(site, so, 200)
    # How long a full heal and a full undo take on this machine (not asserted:
    # it only places the kills inside the runs, however fast the engine gets).
    spans = []
    for command in ("heal", "undo"):
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "soabi_shim", command, "-q", str(site)], env=cli_env(), check=True)
        spans.append(time.monotonic() - start)
    assert_records_sound(originals)
    latest = max(0.03, 0.9 * min(spans))
    rng = random.Random(20261125)
    kills = runs = 0
    while kills < 100 and runs < 300:
        runs += 1
        # Alternate so that every process has work to be killed in the middle of.
        command = "heal" if runs % 2 else "undo"
        p = subprocess.Popen(
            [sys.executable, "-m", "soabi_shim", command, "-q", str(site)],
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.01, latest))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        assert_records_sound(originals)
    assert kills >= 100, f"only {kills} processes were still running when killed"
    final = subprocess.run(
        [sys.executable, "-m", "soabi_shim", "heal", "-q", str(site)], env=cli_env(), capture_output=True, text=True
    )
    assert final.returncode == 0, final.stdout + final.stderr
    assert_records_sound(originals)
    assert_fully_healed(site, originals, 1)


@pytest.mark.slow
def test_heal_while_pip_installs(venv: Venv, ext_dir: Path, tmp_path: Path) -> None:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    wheels = [
        make_wheel(tmp_path / "w", f"conc{i}", "1.0", {f"conc{i}/__init__.py": b"", f"conc{i}/_m0{MUSL_SUFFIX}": so})
        for i in range(30)
    ]
    first, second = wheels[:15], wheels[15:]
    venv.pip("install", *map(str, first))
    pip = subprocess.Popen(
        [sys.executable, "-m", "pip", "--python", str(venv.python), "install", "-q", *map(str, second)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    healers = 0
    while pip.poll() is None or healers < 3:
        out = subprocess.run(
            [sys.executable, "-m", "soabi_shim", "heal", "-q", str(venv.site)],
            env=cli_env(),
            capture_output=True,
            text=True,
        )
        assert "Traceback" not in out.stderr
        healers += 1
    assert pip.wait() == 0, pip.stderr.read() if pip.stderr else ""
    final = subprocess.run(
        [sys.executable, "-m", "soabi_shim", "heal", "-q", str(venv.site)],
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert final.returncode == 0, final.stdout
    for i in range(30):
        record = venv.site / f"conc{i}-1.0.dist-info" / "RECORD"
        rows = parse_strict(record.read_bytes())
        assert [f"conc{i}/_m0{EXT_SUFFIX}", "", ""] in rows
        assert len({r[0] for r in rows}) == len(rows)
        # nothing the installer recorded was lost
        assert {f"conc{i}-1.0.dist-info/INSTALLER", f"conc{i}-1.0.dist-info/REQUESTED"} <= {r[0] for r in rows}, rows
        assert (venv.site / f"conc{i}" / f"_m0{EXT_SUFFIX}").is_symlink()
    venv.pip("uninstall", "-y", *[f"conc{i}" for i in range(30)])
    leftovers = [p for p in venv.site.iterdir() if p.name.startswith("conc")]
    assert not leftovers, [sorted(q.name for q in p.iterdir()) if p.is_dir() else p for p in leftovers]
