"""The import fallback's ELF check: its small header reader only ever
accepts what the full reader and :func:`soabi_shim.elf.refusal` accept, and
every refusal is the full rule's own reason."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Optional

import pytest

from soabi_shim import elf, fallback
from soabi_shim.errors import ElfError
from tests.conftest import MUSL_SUFFIX

#: These tests build their extension with the host's gcc (glibc-linked) and name it for
#: musl, the twin of a glibc interpreter's own suffix; on the musl interpreters of the
#: e2e suite (tests/e2e/test_unit_suite.py) that premise does not hold, and the musl
#: e2e tests cover the same paths with real musl wheels.
glibc_host = pytest.mark.skipif(not sys.thread_info.version, reason="needs a glibc interpreter (gcc-built extension)")


def full_rule(path: str, libc: str) -> Optional[str]:
    try:
        me = elf.read_elf(os.path.realpath(sys.executable))
        return elf.refusal(elf.read_elf(path), me, libc)
    except ElfError as exc:
        return str(exc)


def quick(path: str) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fallback._quick(fd)
    except (OSError, ValueError, IndexError):
        return False
    finally:
        os.close(fd)


def without_versions(data: bytes) -> bytes:
    """The extension with its DT_VERNEED/DT_VERNEEDNUM entries turned into
    DT_DEBUG (ignored by both readers): linked like musl's extensions are,
    with no symbol versions."""
    b = bytearray(data)
    phoff, phnum = int.from_bytes(b[32:40], "little"), int.from_bytes(b[56:58], "little")
    for i in range(phnum):
        at = phoff + 56 * i
        if int.from_bytes(b[at : at + 4], "little") == 2:  # PT_DYNAMIC
            off, size = int.from_bytes(b[at + 8 : at + 16], "little"), int.from_bytes(b[at + 32 : at + 40], "little")
            for d in range(off, off + size, 16):
                if int.from_bytes(b[d : d + 8], "little") in (0x6FFFFFFE, 0x6FFFFFFF):
                    b[d : d + 8] = (21).to_bytes(8, "little")
    return bytes(b)


@pytest.fixture
def so(ext_dir: Path) -> bytes:
    return without_versions((ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes())


@glibc_host
def test_ordinary_extension_is_accepted_without_the_full_reader(
    so: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.so"
    path.write_bytes(so)

    def no_full(p: str) -> Optional[str]:
        raise AssertionError("the full reader was used for an ordinary extension")

    monkeypatch.setattr(fallback, "_full", no_full)
    assert fallback.check(str(path)) is None


def patched(so: bytes, at: int, value: bytes) -> bytes:
    b = bytearray(so)
    b[at : at + len(value)] = value
    return bytes(b)


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("aarch64", lambda so: patched(so, 18, (183).to_bytes(2, "little"))),
        ("executable", lambda so: patched(so, 16, (2).to_bytes(2, "little"))),
        ("32-bit class", lambda so: patched(so, 4, b"\x01")),
        ("big-endian", lambda so: patched(so, 5, b"\x02")),
        ("not ELF", lambda so: b"#!/bin/sh\n" + so[10:]),
        ("header and zeros", lambda so: so[:64] + bytes(len(so) - 64)),
        ("truncated", lambda so: so[:100]),
        ("empty", lambda so: b""),
    ],
)
def test_refusals_are_the_full_rules(so: bytes, tmp_path: Path, what: str, change: object) -> None:
    path = tmp_path / "x.so"
    path.write_bytes(change(so))  # type: ignore[operator]
    expected = full_rule(str(path), fallback.libc())
    assert fallback.check(str(path)) == expected
    assert not quick(str(path)), what  # the small reader never takes these


def test_other_libc_is_refused(so: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's extension needs libc.so.6: on musl it is refused, with heal's reason."""
    path = tmp_path / "glibc.so"
    path.write_bytes(so)
    monkeypatch.setattr(fallback, "libc", lambda: "musl")
    reason = fallback.check(str(path))
    assert reason == full_rule(str(path), "musl")
    assert reason is not None and reason.startswith("linked against glibc")


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.so"
    os.mkfifo(fifo)
    assert fallback.check(str(fifo)) == "cannot read: not a regular file"
    assert fallback.check(str(tmp_path)) == "cannot read: not a regular file"
    assert fallback.check(str(tmp_path / "missing.so")).startswith("cannot read: ")  # type: ignore[union-attr]


def test_quick_reader_never_accepts_what_the_full_rule_refuses(so: bytes, tmp_path: Path) -> None:
    """Random byte changes in the headers, program headers, dynamic section
    and string table: whenever the small reader says "accept", the full rule
    accepts too (for both libcs)."""
    rng = random.Random(1234)
    path = tmp_path / "m.so"
    hot = list(range(0, 64)) + list(range(64, 64 + 56 * 12)) + list(range(0x2E08, 0x2E08 + 24 * 16))
    accepted = 0
    for _ in range(600):
        b = bytearray(so)
        for _ in range(rng.randint(1, 3)):
            at = rng.choice(hot) if rng.random() < 0.8 else rng.randrange(len(b))
            if at < len(b):
                b[at] = rng.randrange(256)
        path.write_bytes(bytes(b))
        for libc in ("glibc", "musl"):
            fallback_libc = fallback.libc
            fallback.libc = lambda libc=libc: libc  # type: ignore[assignment]
            try:
                if quick(str(path)):
                    accepted += 1
                    assert full_rule(str(path), libc) is None, (libc, bytes(b[:80]).hex())
            finally:
                fallback.libc = fallback_libc  # type: ignore[assignment]
    assert accepted > 0  # the property was exercised


def test_musl_linked_extension_on_glibc_and_on_musl(so: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DT_NEEDED libc.so`` (what musl-gcc writes): accepted by the small
    reader on musl, refused with heal's reason on glibc."""
    assert so.count(b"\0libc.so.6\0") == 1
    path = tmp_path / "musl.so"
    path.write_bytes(so.replace(b"\0libc.so.6\0", b"\0libc.so\0\0\0"))
    monkeypatch.setattr(fallback, "libc", lambda: "musl")
    assert quick(str(path)) and fallback.check(str(path)) is None
    monkeypatch.setattr(fallback, "libc", lambda: "glibc")
    reason = fallback.check(str(path))
    assert reason == full_rule(str(path), "glibc") and reason is not None
    assert reason.startswith("linked against musl")
