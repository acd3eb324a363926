"""Refusals and hostile input: each item gets its reason, nothing is written
outside the site directory, no regular file is touched, the healthy
distributions beside them are still healed, and the CLI never tracebacks."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Optional

import soabi_shim
from soabi_shim.facts import gather_facts
from soabi_shim.pipeline import run
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX
from tests.conftest import soabi_shim as cli


def install_dist(site: Path, name: str, files: dict[str, bytes], *, record: Optional[bytes] = None) -> Path:
    """Lay out an installed distribution the way an installer would."""
    for rel, data in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    dist_info = site / f"{name}-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if record is None:
        record = "".join(f"{rel},sha256=x,{len(d)}\n" for rel, d in files.items()).encode()
        record += f"{name}-1.0.dist-info/RECORD,,\n".encode()
    (dist_info / "RECORD").write_bytes(record)
    return dist_info / "RECORD"


def heal_json(*paths: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = cli("heal", "--json", *map(str, paths))
    assert "Traceback" not in out.stderr
    return out.returncode, json.loads(out.stdout)


def reasons(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {p["path"]: p["reason"] for p in report["problems"]}


def snapshot(root: Path) -> dict[str, tuple[bool, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            out[str(p)] = (
                p.is_symlink(),
                os.readlink(p).encode() if p.is_symlink() else (p.read_bytes() if p.is_file() else b""),
            )
    return out


def test_healthy_dist_healed_beside_hostile_ones(site: Path, tmp_path: Path, so: bytes) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"_evil{MUSL_SUFFIX}").write_bytes(so)
    (outside / "pkg").mkdir()
    (outside / "pkg" / f"_evil{MUSL_SUFFIX}").write_bytes(so)
    foreign_arch = bytearray(so)
    foreign_arch[18:20] = struct.pack("<H", 183)  # EM_AARCH64
    elf32 = b"\x7fELF\x01\x01\x01" + b"\0" * 9 + struct.pack("<HHIIIIIHHHHHH", 3, 3, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)

    install_dist(site, "good", {"good/__init__.py": b"", f"good/_speed{MUSL_SUFFIX}": so})
    install_dist(site, "notelf", {f"notelf/_speed{MUSL_SUFFIX}": b"#!/bin/sh\necho not an ELF file\n"})
    install_dist(site, "truncated", {f"truncated/_speed{MUSL_SUFFIX}": so[:40]})
    install_dist(site, "arm", {f"arm/_speed{MUSL_SUFFIX}": bytes(foreign_arch)})
    install_dist(site, "elf32", {f"elf32/_speed{MUSL_SUFFIX}": elf32})
    install_dist(
        site,
        "otherver",
        {
            "otherver/_speed.cpython-310-x86_64-linux-musl.so": so,
            "otherver/_t.cpython-311t-x86_64-linux-musl.so": so,
            "otherver/_d.cpython-311d-x86_64-linux-musl.so": so,
        },
    )
    install_dist(site, "stable", {"stable/_speed.abi3.so": so})
    install_dist(site, "escape", {}, record=f"../outside/_evil{MUSL_SUFFIX},,\n/etc/_evil{MUSL_SUFFIX},,\n".encode())
    (site / "linked").symlink_to(outside / "pkg")
    install_dist(site, "linked", {}, record=f"linked/_evil{MUSL_SUFFIX},,\n".encode())
    install_dist(site, "planted", {f"planted/_speed{MUSL_SUFFIX}": so})
    (site / "planted" / f"_speed{EXT_SUFFIX}").symlink_to("/etc/passwd")
    install_dist(site, "occupied", {f"occupied/_speed{MUSL_SUFFIX}": so, f"occupied/_speed{EXT_SUFFIX}": b"regular"})
    install_dist(site, "garbage", {f"garbage/_speed{MUSL_SUFFIX}": so}, record=b"\xff\xfe\x00garbage\n")
    install_dist(
        site, "blank", {f"blank/_speed{MUSL_SUFFIX}": so}, record=f"blank/_speed{MUSL_SUFFIX},,\n\nx,,\n".encode()
    )
    install_dist(
        site, "fourfield", {f"fourfield/_speed{MUSL_SUFFIX}": so}, record=f"fourfield/_speed{MUSL_SUFFIX},,,\n".encode()
    )

    before_outside = snapshot(outside)
    garbage_record = (site / "garbage-1.0.dist-info" / "RECORD").read_bytes()
    occupied = (site / "occupied" / f"_speed{EXT_SUFFIX}").read_bytes()

    code, report = heal_json(site)
    assert code == 1
    why = reasons(report)
    assert "not an ELF file" in why[str(site / "notelf" / f"_speed{MUSL_SUFFIX}")]
    assert "truncated" in why[str(site / "truncated" / f"_speed{MUSL_SUFFIX}")]
    assert "ELF for aarch64 64-bit" in why[str(site / "arm" / f"_speed{MUSL_SUFFIX}")]
    assert "ELF for i386 32-bit" in why[str(site / "elf32" / f"_speed{MUSL_SUFFIX}")]
    assert "leaves the site directory" in why[str(site / "../outside" / f"_evil{MUSL_SUFFIX}")]
    assert "leaves the site directory" in why[os.path.join(str(site), f"/etc/_evil{MUSL_SUFFIX}")]
    assert "outside the site directory" in why[str(site / "linked" / f"_evil{MUSL_SUFFIX}")]
    assert "already a symlink to '/etc/passwd'" in why[str(site / "planted" / f"_speed{MUSL_SUFFIX}")]
    assert "not valid UTF-8" in why[str(site / "garbage-1.0.dist-info" / "RECORD")]
    assert "blank line" in why[str(site / "blank-1.0.dist-info" / "RECORD")]
    assert "4 fields" in why[str(site / "fourfield-1.0.dist-info" / "RECORD")]
    # Other versions, flags and .abi3.so are not candidates at all.
    assert not any("otherver" in p or "stable" in p for p in why)
    assert {a["alias"]: a["action"] for a in report["aliases"]} == {
        str(site / "good" / f"_speed{EXT_SUFFIX}"): "created"
    }
    assert os.readlink(site / "good" / f"_speed{EXT_SUFFIX}") == f"./_speed{MUSL_SUFFIX}"
    assert not (site / "otherver" / f"_speed{EXT_SUFFIX}").exists()
    # Nothing outside was touched, nothing planted was followed or replaced.
    assert snapshot(outside) == before_outside
    assert os.readlink(site / "planted" / f"_speed{EXT_SUFFIX}") == "/etc/passwd"
    assert (site / "occupied" / f"_speed{EXT_SUFFIX}").read_bytes() == occupied
    assert (site / "garbage-1.0.dist-info" / "RECORD").read_bytes() == garbage_record
    assert not (site / "garbage" / f"_speed{EXT_SUFFIX}").exists()


def test_glibc_linked_file_refused_for_a_musl_interpreter(site: Path, so: bytes) -> None:
    """The libc check, with the facts of a musl interpreter (the e2e suite has the real one)."""
    install_dist(site, "demo", {f"demo/_speed{MUSL_SUFFIX}": so})
    facts = gather_facts()
    musl_facts = facts.replace(
        libc="musl",
        extension_suffixes=(MUSL_SUFFIX.replace("musl", "gnu"),),
    )
    # A "musl" interpreter accepting -gnu names: our -musl file is the twin.
    report = run("heal", [str(site)], facts=musl_facts)
    (problem,) = report.problems
    assert "linked against glibc (needs libc.so.6), interpreter runs on musl" in problem.reason
    assert report.aliases == []
    assert not (site / "demo" / f"_speed{EXT_SUFFIX}").exists()


def test_missing_file_and_occupied_by_directory(site: Path, so: bytes) -> None:
    install_dist(site, "gone", {}, record=f"gone/_speed{MUSL_SUFFIX},sha256=x,1\n".encode())
    install_dist(site, "dir", {f"dir/_speed{MUSL_SUFFIX}": so})
    (site / "dir" / f"_speed{EXT_SUFFIX}").mkdir()
    report = soabi_shim.heal([str(site)])
    why = {p.path: p.reason for p in report.problems}
    assert "missing on disk" in why[str(site / "gone" / f"_speed{MUSL_SUFFIX}")]
    assert "not a file" in why[str(site / "dir" / f"_speed{MUSL_SUFFIX}")]


def test_weird_paths_and_names(tmp_path: Path, so: bytes) -> None:
    site = tmp_path / "dir with spaces ü" / "site-packages"
    site.mkdir(parents=True)
    install_dist(site, "good", {f"good/_speed{MUSL_SUFFIX}": so})
    weird = os.fsencode(str(site / "good")) + b"/\xff\xfe" + MUSL_SUFFIX.encode()
    with open(weird, "wb") as f:
        f.write(so)
    install_dist(
        site,
        "crlf",
        {f"crlf/_speed{MUSL_SUFFIX}": so},
        record=f'"crlf/_speed{MUSL_SUFFIX}",,\r\n"crlf/a,b.py",sha256=x,1\r\n'.encode(),
    )
    code, report = heal_json(site)
    assert code == 0, report
    created = sorted(a["alias"] for a in report["aliases"])
    assert created == sorted([str(site / "good" / f"_speed{EXT_SUFFIX}"), str(site / "crlf" / f"_speed{EXT_SUFFIX}")])
    record = (site / "crlf-1.0.dist-info" / "RECORD").read_bytes()
    assert record.startswith(f'"crlf/_speed{MUSL_SUFFIX}",,\r\n"crlf/a,b.py",sha256=x,1\r\n'.encode())
    assert record.endswith(f"crlf/_speed{EXT_SUFFIX},,\n".encode())
    # --include-unowned must not choke on the non-UTF-8 name either.
    out = cli("check", "--include-unowned", str(site))
    assert out.returncode == 0 and "Traceback" not in out.stderr


def test_big_record(site: Path, so: bytes) -> None:
    rows = "".join(f"big/mod{i}.py,sha256=x,1\n" for i in range(100_000))
    install_dist(
        site, "big", {f"big/_speed{MUSL_SUFFIX}": so}, record=(rows + f"big/_speed{MUSL_SUFFIX},sha256=x,1\n").encode()
    )
    code, _report = heal_json(site)
    assert code == 0
    data = (site / "big-1.0.dist-info" / "RECORD").read_bytes()
    assert data.startswith(rows.encode())
    assert data.endswith(f"big/_speed{EXT_SUFFIX},,\n".encode())
    assert data.count(b"\n") == 100_002


def test_read_only_site_one_reason(world_readable_tmp: Path, so: bytes) -> None:
    site = world_readable_tmp / "site-packages"
    site.mkdir()
    for i in range(5):
        install_dist(site, f"d{i}", {f"d{i}/_speed{MUSL_SUFFIX}": so})
    for dirpath, _dirnames, _filenames in os.walk(site):
        os.chmod(dirpath, 0o555)
    try:
        env = dict(os.environ, HOME=str(world_readable_tmp))
        import subprocess
        import sys

        from tests.conftest import AS_NOBODY, ROOT

        env["PYTHONPATH"] = str(ROOT)
        out = subprocess.run(
            [*AS_NOBODY, sys.executable, "-m", "soabi_shim", "heal", str(site)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    finally:
        for dirpath, _dirnames, _filenames in os.walk(site):
            os.chmod(dirpath, 0o755)
    assert out.returncode == 1, out.stdout + out.stderr
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    assert problems == [f"problem: {site}: not writable by this user (uid 65534): 5 alias(es) not made"]
    assert "Traceback" not in out.stderr
    assert not any(p.is_symlink() for p in site.rglob("*"))
