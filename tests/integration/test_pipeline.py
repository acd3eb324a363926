"""The engine in-process, step by step (scan -> plan -> apply), on a fake
site directory in ``tmp_path``: what each step decides and writes."""

from __future__ import annotations

import csv
import ctypes
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from soabi_shim import record as record_module
from soabi_shim.apply import apply_plan
from soabi_shim.facts import InterpreterFacts, gather_facts
from soabi_shim.pipeline import run
from soabi_shim.plan import Plan, build_twin_map, make_plan, make_undo_plan
from soabi_shim.plugins import PluginHost, get_plugin_host
from soabi_shim.scan import SiteScan, scan_site
from soabi_shim.sitefs import SiteDir
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX
from tests.integration.test_refusals import install_dist

ALIAS = f"demo/_speed{EXT_SUFFIX}"
TWIN = f"demo/_speed{MUSL_SUFFIX}"


@pytest.fixture(scope="module")
def facts() -> InterpreterFacts:
    return gather_facts()


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return get_plugin_host(entry_points=False)


@pytest.fixture
def demo(site: Path, so: bytes) -> Path:
    """``demo 1.0`` installed: its RECORD."""
    return install_dist(site, "demo", {"demo/__init__.py": b"", TWIN: so})


def rows(record: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(record.read_text(), newline="")))


def paths(record: Path) -> list[str]:
    return [r[0] for r in rows(record)]


class Steps:
    """scan -> plan -> apply by hand, the site directory kept open.  The
    scan happens at the first plan, so a test can lay out the tree first."""

    def __init__(self, site: Path, facts: InterpreterFacts, host: PluginHost) -> None:
        self.site = site
        self.twin_map = build_twin_map(facts, host)
        self.scans: list[SiteScan] = []
        self.facts, self.host = facts, host

    def scan(self) -> list[SiteScan]:
        if not self.scans:
            self.scans = [scan_site(str(self.site), self.twin_map)]
        return self.scans

    def heal_plan(self) -> Plan:
        return make_plan(self.scan(), self.facts, self.host)

    def undo_plan(self) -> Plan:
        return make_undo_plan(self.scan(), self.twin_map, include_unowned=False)

    def close(self) -> None:
        for s in self.scans:
            s.close()


@pytest.fixture
def steps(site: Path, facts: InterpreterFacts, host: PluginHost) -> Iterator[Steps]:
    s = Steps(site, facts, host)
    yield s
    s.close()


def test_heal_then_undo_removes_link_and_row(site: Path, demo: Path, steps: Steps) -> None:
    original = demo.read_bytes()
    plan = steps.heal_plan()
    assert [d.action for d in plan.decisions] == ["create"]
    aliases, problems = apply_plan(plan, dry_run=False)
    assert problems == [] and [a.action for a in aliases] == ["created"]
    assert os.readlink(site / ALIAS) == f"./_speed{MUSL_SUFFIX}"
    assert paths(demo)[-1] == ALIAS

    again = Steps(site, steps.facts, steps.host)
    try:
        undo = again.undo_plan()
        assert [(d.action, d.recorded, d.candidate.alias_rel) for d in undo.decisions] == [("remove", True, ALIAS)]
        aliases, problems = apply_plan(undo, dry_run=False)
    finally:
        again.close()
    assert problems == [] and [a.action for a in aliases] == ["removed"]
    assert not os.path.lexists(site / ALIAS)
    assert demo.read_bytes() == original  # the row is gone, every other byte kept


def test_undo_drops_the_row_of_an_alias_never_made(site: Path, demo: Path, steps: Steps) -> None:
    """A heal killed between writing the row and making the link."""
    original = demo.read_bytes()
    demo.write_bytes(original + f"{ALIAS},,\n".encode())
    undo = steps.undo_plan()
    assert [(d.action, d.candidate.alias_rel) for d in undo.decisions] == [("unrecord", ALIAS)]
    aliases, problems = apply_plan(undo, dry_run=False)
    assert aliases == [] and problems == []
    assert demo.read_bytes() == original


def test_undo_keeps_rows_it_cannot_explain(site: Path, demo: Path, steps: Steps) -> None:
    """A hashless row with an alias name but no twin listed, and a row for an
    alias that exists as a regular file: neither is ours."""
    (site / "other").mkdir()
    (site / "other" / f"_x{EXT_SUFFIX}").write_bytes(b"regular")
    extra = f"nope/_y{EXT_SUFFIX},,\nother/_x{EXT_SUFFIX},,\nother/_x{MUSL_SUFFIX},,\n"
    demo.write_bytes(demo.read_bytes() + extra.encode())
    before = demo.read_bytes()
    undo = steps.undo_plan()
    assert undo.decisions == []
    apply_plan(undo, dry_run=False)
    assert demo.read_bytes() == before
    assert (site / "other" / f"_x{EXT_SUFFIX}").read_bytes() == b"regular"


def test_undo_finds_our_link_whose_row_was_lost(site: Path, demo: Path, steps: Steps) -> None:
    original = demo.read_bytes()
    (site / ALIAS).symlink_to(f"./_speed{MUSL_SUFFIX}")
    undo = steps.undo_plan()
    assert [(d.action, d.recorded) for d in undo.decisions] == [("remove", False)]
    aliases, _ = apply_plan(undo, dry_run=False)
    assert [a.action for a in aliases] == ["removed"]
    assert not os.path.lexists(site / ALIAS)
    assert demo.read_bytes() == original


def test_undo_leaves_hand_made_and_foreign_links(site: Path, demo: Path, steps: Steps) -> None:
    (site / ALIAS).symlink_to(f"_speed{MUSL_SUFFIX}")  # hand-made ln -s
    demo.write_bytes(demo.read_bytes() + f"{ALIAS},,\n".encode())
    assert steps.undo_plan().decisions == []


def test_lost_row_is_recorded_again(site: Path, demo: Path, steps: Steps) -> None:
    (site / ALIAS).symlink_to(f"./_speed{MUSL_SUFFIX}")
    plan = steps.heal_plan()
    assert [d.action for d in plan.decisions] == ["record"]
    aliases, problems = apply_plan(plan, dry_run=False)
    assert problems == [] and [a.action for a in aliases] == ["created"]
    assert paths(demo).count(ALIAS) == 1


def test_hand_made_link_is_never_recorded(site: Path, demo: Path, steps: Steps) -> None:
    before = demo.read_bytes()
    (site / ALIAS).symlink_to(f"_speed{MUSL_SUFFIX}")
    plan = steps.heal_plan()
    assert [d.action for d in plan.decisions] == ["present"]
    aliases, _ = apply_plan(plan, dry_run=False)
    assert [a.action for a in aliases] == ["present"]
    assert demo.read_bytes() == before


def test_row_is_forgotten_when_the_name_is_taken_meanwhile(site: Path, demo: Path, steps: Steps) -> None:
    before = demo.read_bytes()
    plan = steps.heal_plan()
    assert [d.action for d in plan.decisions] == ["create"]
    (site / ALIAS).write_bytes(b"someone else's file")  # between plan and apply
    aliases, problems = apply_plan(plan, dry_run=False)
    assert aliases == []
    assert [p[1] for p in problems] == ["the alias name was taken meanwhile; left alone"]
    assert demo.read_bytes() == before  # the fresh row was dropped again
    assert (site / ALIAS).read_bytes() == b"someone else's file"


def test_row_is_kept_when_another_heal_made_the_link_meanwhile(site: Path, demo: Path, steps: Steps) -> None:
    plan = steps.heal_plan()
    (site / ALIAS).symlink_to(f"./_speed{MUSL_SUFFIX}")  # a concurrent heal won
    aliases, problems = apply_plan(plan, dry_run=False)
    assert problems == [] and [a.action for a in aliases] == ["present"]
    assert paths(demo).count(ALIAS) == 1


def test_dry_run_writes_nothing(site: Path, demo: Path, steps: Steps) -> None:
    before = demo.read_bytes()
    aliases, _ = apply_plan(steps.heal_plan(), dry_run=True)
    assert [a.action for a in aliases] == ["would-create"]
    assert demo.read_bytes() == before and not os.path.lexists(site / ALIAS)


def test_each_record_is_read_once_and_never_fsynced(
    site: Path, so: bytes, monkeypatch: pytest.MonkeyPatch, facts: InterpreterFacts
) -> None:
    for i in range(5):
        install_dist(site, f"d{i}", {f"d{i}/_a{MUSL_SUFFIX}": so, f"d{i}/_b{MUSL_SUFFIX}": so})
    reads: list[str] = []
    real_read = SiteDir.read

    def counting_read(self: SiteDir, rel: str, limit: int) -> tuple[bytes, os.stat_result]:
        reads.append(rel)
        return real_read(self, rel, limit)

    def no_fsync(fd: int) -> None:
        raise AssertionError("fsync called")

    real_read_fd = record_module._read_fd
    rereads: list[int] = []

    def counting_read_fd(fd: int) -> bytes:
        rereads.append(fd)
        return real_read_fd(fd)

    monkeypatch.setattr(SiteDir, "read", counting_read)
    monkeypatch.setattr(os, "fsync", no_fsync)
    monkeypatch.setattr(record_module, "_read_fd", counting_read_fd)
    report = run("heal", [str(site)], facts=facts, host=get_plugin_host(entry_points=False))
    assert report.ok and len(report.aliases) == 10
    assert sorted(r for r in reads if r.endswith("RECORD")) == [f"d{i}-1.0.dist-info/RECORD" for i in range(5)]
    assert rereads == []  # the scan's bytes were reused under the lock
    reads.clear()
    report = run("undo", [str(site)], facts=facts, host=get_plugin_host(entry_points=False))
    assert [a.action for a in report.aliases] == ["removed"] * 10
    assert len([r for r in reads if r.endswith("RECORD")]) == 5 and rereads == []


def test_record_changed_after_the_scan_is_read_again(site: Path, demo: Path, steps: Steps) -> None:
    plan = steps.heal_plan()
    demo.write_bytes(demo.read_bytes() + b"demo/late.py,sha256=x,1\n")  # an installer, after our scan
    apply_plan(plan, dry_run=False)
    assert paths(demo)[-2:] == ["demo/late.py", ALIAS]


# --- swaps between plan and apply (deterministic) -------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    assert _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0, os.strerror(ctypes.get_errno())


@pytest.fixture
def outside(tmp_path: Path, so: bytes) -> Path:
    """A directory outside the site with the same files as ``demo/``."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / f"_speed{MUSL_SUFFIX}").write_bytes(so)
    return out


def test_package_dir_swapped_after_the_plan_heal(site: Path, demo: Path, outside: Path, steps: Steps) -> None:
    plan = steps.heal_plan()
    steps.scans[0].fs.forget()  # type: ignore[union-attr]  # no cached descriptor: apply walks again
    (site / "evil").symlink_to(outside)
    exchange(site / "demo", site / "evil")  # demo is now a symlink to outside
    aliases, problems = apply_plan(plan, dry_run=False)
    assert aliases == []
    assert "outside the site directory" in problems[0][1]
    assert sorted(os.listdir(outside)) == [f"_speed{MUSL_SUFFIX}"]
    assert ALIAS not in paths(demo)  # the fresh row was dropped again


def test_package_dir_swapped_after_the_plan_undo(
    site: Path, demo: Path, outside: Path, facts: InterpreterFacts
) -> None:
    host = get_plugin_host(entry_points=False)
    assert run("heal", [str(site)], facts=facts, host=host).ok
    (outside / f"_speed{EXT_SUFFIX}").symlink_to(f"./_speed{MUSL_SUFFIX}")  # the shape undo removes
    steps = Steps(site, facts, host)
    try:
        plan = steps.undo_plan()
        assert [d.action for d in plan.decisions] == ["remove"]
        steps.scans[0].fs.forget()  # type: ignore[union-attr]
        (site / "evil").symlink_to(outside)
        exchange(site / "demo", site / "evil")
        aliases, problems = apply_plan(plan, dry_run=False)
    finally:
        steps.close()
    assert aliases == [] and "outside the site directory" in problems[0][1]
    assert os.readlink(outside / f"_speed{EXT_SUFFIX}") == f"./_speed{MUSL_SUFFIX}"
    assert ALIAS in paths(demo)  # the row stays with the link it names
