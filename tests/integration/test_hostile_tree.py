"""Special files never hang anything, and races are problems, not tracebacks.

The special-file cases run the CLI in a subprocess with a timeout, so a
hang fails the test instead of hanging the suite.  The race cases run the
pipeline in-process against a background thread that changes the tree.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from soabi_shim.pipeline import run
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT
from tests.integration.test_refusals import install_dist

TIMEOUT = 60  # seconds: far above a normal run, far below "forever"


def cli(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """The CLI with --json in a subprocess that may not hang."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "soabi_shim", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout)


def reasons(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {p["path"]: p["reason"] for p in report["problems"]}


def make_socket(path: Path) -> None:
    """A unix socket file at ``path`` (bound at a short name, then moved:
    socket paths are limited to 107 bytes)."""
    short = tempfile.mkdtemp(prefix="sock", dir="/tmp")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(os.path.join(short, "s"))
    finally:
        s.close()  # the socket file stays
    os.rename(os.path.join(short, "s"), path)
    os.rmdir(short)


SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": lambda p: os.mkfifo(p),
    "socket": make_socket,
    "directory": lambda p: p.mkdir(),
    "kmsg": lambda p: p.symlink_to("/proc/kmsg"),
    "zero": lambda p: p.symlink_to("/dev/zero"),
}
KIND = {"fifo": "a FIFO", "socket": "a socket", "directory": "a directory", "kmsg": "a ", "zero": "a "}


@pytest.mark.parametrize("special", sorted(SPECIAL))
def test_special_file_listed_in_record(site: Path, so: bytes, special: str) -> None:
    install_dist(site, "good", {f"good/_speed{MUSL_SUFFIX}": so})
    install_dist(site, "bad", {"bad/__init__.py": b""})
    record = site / "bad-1.0.dist-info" / "RECORD"
    record.write_bytes(record.read_bytes() + f"bad/_x{MUSL_SUFFIX},sha256=x,1\n".encode())
    target = site / "bad" / f"_x{MUSL_SUFFIX}"
    SPECIAL[special](target)
    for command in ("check", "doctor", "heal", "undo"):
        code, report = cli(command, str(site))
        assert code == (0 if command == "undo" else 1), (command, report)
        if command != "undo":
            reason = reasons(report)[str(target)]
            assert reason.startswith("not a regular file (" + KIND[special]), (command, reason)
    assert (site / "good" / f"_speed{EXT_SUFFIX}").is_symlink() is False  # undo ran last
    assert not (site / "bad" / f"_x{EXT_SUFFIX}").exists()


@pytest.mark.parametrize("special", ["fifo", "socket", "kmsg"])
def test_special_file_loose(site: Path, special: str) -> None:
    (site / "loose").mkdir()
    target = site / "loose" / f"_x{MUSL_SUFFIX}"
    SPECIAL[special](target)
    code, report = cli("heal", "--include-unowned", str(site))
    assert code == 1
    assert reasons(report)[str(target)].startswith("not a regular file")
    code, report = cli("doctor", str(site))
    assert code == 1 and str(target) in reasons(report)
    code, report = cli("undo", "--include-unowned", str(site))
    assert code == 0, report


@pytest.mark.parametrize("special", ["fifo", "kmsg", "zero", "directory"])
def test_record_that_is_not_a_regular_file(site: Path, so: bytes, special: str) -> None:
    install_dist(site, "good", {f"good/_speed{MUSL_SUFFIX}": so})
    record = install_dist(site, "bad", {f"bad/_speed{MUSL_SUFFIX}": so})
    record.unlink()
    SPECIAL[special](record)
    for command in ("check", "heal", "undo", "doctor"):
        code, report = cli(command, str(site))
        assert code == 1, (command, report)
        assert "not a regular file" in reasons(report)[str(record)], report
    assert (site / "good" / f"_speed{EXT_SUFFIX}").is_symlink() is False  # undo ran after heal


def test_dist_info_symlinked_outside_is_refused(site: Path, tmp_path: Path, so: bytes) -> None:
    """Issue 11: heal replaced the RECORD of a dist-info symlinked outside."""
    outside = tmp_path / "outside"
    real = install_dist(outside, "evil", {}, record=f"evil/_speed{MUSL_SUFFIX},sha256=x,1\n".encode())
    original = real.read_bytes()
    (site / "evil").mkdir()
    (site / "evil" / f"_speed{MUSL_SUFFIX}").write_bytes(so)
    (site / "evil-1.0.dist-info").symlink_to(real.parent)
    (site / "inner-1.0.dist-info").symlink_to("evil-1.0.dist-info")  # a chain that ends outside too
    code, report = cli("heal", str(site))
    assert code == 1
    why = reasons(report)
    assert "outside the site directory" in why[str(site / "evil-1.0.dist-info")]
    assert "outside the site directory" in why[str(site / "inner-1.0.dist-info")]
    assert real.read_bytes() == original
    assert sorted(os.listdir(real.parent)) == ["METADATA", "RECORD"]
    assert not (site / "evil" / f"_speed{EXT_SUFFIX}").exists()


def test_dist_info_symlinked_inside_is_followed(site: Path, so: bytes) -> None:
    record = install_dist(site, "demo", {f"demo/_speed{MUSL_SUFFIX}": so})
    (site / "stash").mkdir()
    os.rename(record.parent, site / "stash" / record.parent.name)
    (site / record.parent.name).symlink_to(f"stash/{record.parent.name}")
    code, report = cli("heal", str(site))
    assert code == 0, report
    assert [f"demo/_speed{EXT_SUFFIX}", "", ""] in record_rows(site / "stash" / record.parent.name / "RECORD")


def test_package_dir_symlinked_outside_undo_leaves_it(site: Path, tmp_path: Path, so: bytes) -> None:
    """Issue 11: undo deleted the recorded alias in a package dir that is a symlink outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"_speed{MUSL_SUFFIX}").write_bytes(so)
    (outside / f"_speed{EXT_SUFFIX}").symlink_to(f"./_speed{MUSL_SUFFIX}")
    (site / "pkg").symlink_to(outside)
    install_dist(site, "pkg", {}, record=f"pkg/_speed{MUSL_SUFFIX},sha256=x,1\npkg/_speed{EXT_SUFFIX},,\n".encode())
    code, _report = cli("undo", str(site))
    assert code == 0
    assert (outside / f"_speed{EXT_SUFFIX}").is_symlink()


# --- races ---------------------------------------------------------------


def record_rows(record: Path) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(record.read_bytes().decode("utf-8"), newline="")))
    assert all(len(r) == 3 for r in rows), rows
    return rows


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Run a step in a loop in a thread until the test body ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def start(step: Callable[[], None]) -> None:
        def loop() -> None:
            while not stop.is_set():
                try:
                    step()
                except OSError:
                    pass
                except BaseException as exc:  # pragma: no cover - a bug in the test
                    errors.append(exc)
                    return

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        threads.append(t)

    yield start
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors


def test_alias_flipped_concurrently(site: Path, so: bytes, background: Callable[[Callable[[], None]], None]) -> None:
    record = install_dist(site, "demo", {f"demo/_speed{MUSL_SUFFIX}": so})
    alias = site / "demo" / f"_speed{EXT_SUFFIX}"
    shapes = [f"./_speed{MUSL_SUFFIX}", f"_speed{MUSL_SUFFIX}", "/etc/passwd", None]
    state = {"i": 0}

    def flip() -> None:
        shape = shapes[state["i"] % len(shapes)]
        state["i"] += 1
        if shape is None:
            os.mkdir(alias)
            os.rmdir(alias)
        else:
            os.symlink(shape, alias)
            os.unlink(alias)

    background(flip)
    problems = 0
    for i in range(150):
        report = run(("heal", "check", "undo")[i % 3], [str(site)])  # never raises
        problems += len(report.problems)
        record_rows(record)
    assert state["i"] > 0
    rows = record_rows(record)
    assert len({r[0] for r in rows}) == len(rows)


_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_directories_swapped_for_symlinks_outside(
    site: Path, tmp_path: Path, so: bytes, background: Callable[[Callable[[], None]], None]
) -> None:
    """A package dir and a dist-info dir swapped (renameat2 RENAME_EXCHANGE)
    with symlinks to outside during heal and undo: nothing is ever created,
    replaced or removed outside."""
    outside = tmp_path / "outside"
    for sub in ("a", "b"):
        (outside / sub).mkdir(parents=True)
        (outside / sub / f"_speed{MUSL_SUFFIX}").write_bytes(so)
    # b holds an alias of our shape: a heal through it finds it "present",
    # an undo through it would remove it.
    (outside / "b" / f"_speed{EXT_SUFFIX}").symlink_to(f"./_speed{MUSL_SUFFIX}")
    fake_info = outside / "demo-1.0.dist-info"
    fake_info.mkdir()
    fake_record = f"demo/_speed{MUSL_SUFFIX},sha256=x,1\ndemo2/_speed{EXT_SUFFIX},,\n"
    (fake_info / "RECORD").write_text(fake_record)
    install_dist(site, "demo", {f"demo/_speed{MUSL_SUFFIX}": so, f"demo2/_speed{MUSL_SUFFIX}": so})
    (site / "swap-a").symlink_to(outside / "a")
    (site / "swap-b").symlink_to(outside / "b")
    (site / "swap-info").symlink_to(fake_info)

    def snapshot() -> dict[str, str]:
        out = {}
        for p in sorted(outside.rglob("*")):
            out[str(p)] = ("->" + os.readlink(p)) if p.is_symlink() else (p.read_text("latin-1") if p.is_file() else "")
        return out

    before = snapshot()
    flips = {"n": 0}

    def swap() -> None:
        exchange(site / "demo", site / "swap-a")
        exchange(site / "demo2", site / "swap-b")
        exchange(site / "demo-1.0.dist-info", site / "swap-info")
        flips["n"] += 1

    background(swap)
    for i in range(150):
        run("heal" if i % 2 else "undo", [str(site)])  # never raises
        assert snapshot() == before, f"iteration {i}: something outside changed"
    assert flips["n"] > 0
