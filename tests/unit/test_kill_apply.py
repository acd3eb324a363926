"""apply.py with hand-made plans over real scans of fake site directories
in ``tmp_path``: what each decision writes, reports and leaves alone.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from soabi_shim import apply as apply_module
from soabi_shim.apply import apply_plan
from soabi_shim.plan import Action, Decision, Plan
from soabi_shim.scan import SiteScan, scan_site

GNU = ".cpython-311-x86_64-linux-gnu.so"
MUSL = ".cpython-311-x86_64-linux-musl.so"
TWIN_MAP = {MUSL: GNU}
FOREIGN = f"demo/_speed{MUSL}"
ALIAS = f"demo/_speed{GNU}"


def record_paths(record: Path) -> list[str]:
    return [r[0] for r in csv.reader(io.StringIO(record.read_text(), newline=""))]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    s = tmp_path / "site"
    (s / "demo").mkdir(parents=True)
    (s / FOREIGN).write_bytes(b"\x7fELF")
    d = s / "demo-1.0.dist-info"
    d.mkdir()
    (d / "RECORD").write_text(f"{FOREIGN},,4\n{d.name}/RECORD,,\n")
    return s


@pytest.fixture
def record(site: Path) -> Path:
    return site / "demo-1.0.dist-info" / "RECORD"


def plan_for(site: Path, action: Action, *, recorded: bool = False, reason: str = "") -> tuple[Plan, SiteScan]:
    scan = scan_site(str(site), TWIN_MAP)
    (c,) = scan.candidates
    plan = Plan(None, [Decision(c, action, reason, recorded)], scans=[scan], sites=[str(site)])
    return plan, scan


def run(site: Path, action: Action, *, dry_run: bool = False, recorded: bool = False, reason: str = "") -> tuple:
    plan, scan = plan_for(site, action, recorded=recorded, reason=reason)
    try:
        aliases, problems = apply_plan(plan, dry_run=dry_run)
    finally:
        scan.close()
    return [(a.action, a.alias, a.target, a.distribution, a.version) for a in aliases], problems


def test_create_records_then_links(site: Path, record: Path) -> None:
    aliases, problems = run(site, "create")
    assert problems == []
    assert aliases == [("created", str(site / ALIAS), str(site / FOREIGN), "demo", "1.0")]
    assert os.readlink(site / ALIAS) == f"./_speed{MUSL}"
    assert ALIAS in record_paths(record)


def test_create_with_row_already_there_adds_no_second_row(site: Path, record: Path) -> None:
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "create", recorded=True)
    assert problems == []
    assert [a[0] for a in aliases] == ["created"]
    assert record_paths(record).count(ALIAS) == 1


def test_record_only_writes_the_row(site: Path, record: Path) -> None:
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    aliases, problems = run(site, "record")
    assert problems == []
    assert [a[0] for a in aliases] == ["created"]
    assert ALIAS in record_paths(record)


@pytest.mark.parametrize(
    ("action", "reported"),
    [("create", "would-create"), ("record", "would-create"), ("remove", "would-remove"), ("present", "present")],
)
def test_dry_run_writes_nothing(site: Path, record: Path, action: Action, reported: str) -> None:
    before = record.read_text()
    aliases, problems = run(site, action, dry_run=True)
    assert problems == []
    assert [a[0] for a in aliases] == [reported]
    assert not os.path.lexists(site / ALIAS)
    assert record.read_text() == before


def test_present_and_occupied_write_nothing(site: Path, record: Path) -> None:
    before = record.read_text()
    assert run(site, "present")[0][0][0] == "present"
    assert run(site, "occupied") == ([], [])
    assert record.read_text() == before and not os.path.lexists(site / ALIAS)


def test_refuse_is_a_problem_with_its_reason(site: Path, record: Path) -> None:
    before = record.read_text()
    aliases, problems = run(site, "refuse", reason="linked against musl")
    assert aliases == []
    assert problems == [(str(site / FOREIGN), "linked against musl")]
    assert record.read_text() == before


def test_alias_taken_by_a_regular_file_is_left_and_the_row_forgotten(site: Path, record: Path) -> None:
    (site / ALIAS).write_bytes(b"someone else's")
    aliases, problems = run(site, "create")
    assert aliases == []
    assert problems == [(str(site / FOREIGN), "the alias name was taken meanwhile; left alone")]
    assert (site / ALIAS).read_bytes() == b"someone else's"
    assert ALIAS not in record_paths(record)  # _forget dropped the row it had added


def test_alias_taken_by_a_recorded_file_keeps_the_row(site: Path, record: Path) -> None:
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    (site / ALIAS).write_bytes(b"x")
    _aliases, problems = run(site, "create", recorded=True)
    assert [p[1] for p in problems] == ["the alias name was taken meanwhile; left alone"]
    assert ALIAS in record_paths(record)  # not ours to forget


@pytest.mark.parametrize("target", [f"./_speed{MUSL}", f"_speed{MUSL}"])
def test_alias_made_meanwhile_is_present_and_recorded(site: Path, record: Path, target: str) -> None:
    os.symlink(target, site / ALIAS)
    aliases, problems = run(site, "create")
    assert problems == []
    assert [a[0] for a in aliases] == ["present"]
    assert ALIAS in record_paths(record)
    assert os.readlink(site / ALIAS) == target


def test_alias_dir_gone_is_a_problem_and_the_row_forgotten(site: Path, record: Path) -> None:
    plan, scan = plan_for(site, "create")
    try:
        (site / FOREIGN).unlink()
        (site / "demo").rmdir()
        aliases, problems = apply_plan(plan, dry_run=False)
    finally:
        scan.close()
    assert aliases == []
    ((path, reason),) = problems
    assert path == str(site / FOREIGN)
    assert reason.startswith("cannot create the alias: ")
    assert ALIAS not in record_paths(record)


def test_remove_unlinks_ours_and_its_row(site: Path, record: Path) -> None:
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "remove", recorded=True)
    assert problems == []
    assert aliases == [("removed", str(site / ALIAS), str(site / FOREIGN), "demo", "1.0")]
    assert not os.path.lexists(site / ALIAS)
    assert ALIAS not in record_paths(record)
    assert FOREIGN in record_paths(record)


def test_remove_unrecorded_alias_leaves_record_alone(site: Path, record: Path) -> None:
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    before = record.read_text()
    aliases, problems = run(site, "remove", recorded=False)
    assert problems == [] and [a[0] for a in aliases] == ["removed"]
    assert record.read_text() == before


def test_remove_a_changed_alias_is_left_alone_with_its_row(site: Path, record: Path) -> None:
    os.symlink("elsewhere.so", site / ALIAS)
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "remove", recorded=True)
    assert aliases == []
    assert problems == [(str(site / FOREIGN), "the alias changed while we looked at it; left alone")]
    assert os.readlink(site / ALIAS) == "elsewhere.so"
    assert ALIAS in record_paths(record)


def test_remove_already_gone_drops_the_row(site: Path, record: Path) -> None:
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "remove", recorded=True)
    assert aliases == [] and problems == []
    assert ALIAS not in record_paths(record)


def test_remove_a_regular_file_is_refused(site: Path, record: Path) -> None:
    (site / ALIAS).write_bytes(b"mine")
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "remove", recorded=True)
    assert aliases == []
    assert len(problems) == 1 and problems[0][0] == str(site / FOREIGN)
    assert (site / ALIAS).read_bytes() == b"mine"
    assert ALIAS in record_paths(record)


def test_unrecord_drops_only_the_row(site: Path, record: Path) -> None:
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "unrecord", recorded=True)
    assert aliases == [] and problems == []
    assert record_paths(record) == [FOREIGN, "demo-1.0.dist-info/RECORD"]


def test_unwritable_site_is_one_problem(site: Path, record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_access = os.access
    monkeypatch.setattr(apply_module.os, "access", lambda p, mode: False if p == str(site) else real_access(p, mode))
    before = record.read_text()
    aliases, problems = run(site, "create")
    assert aliases == []
    ((path, reason),) = problems
    assert path == str(site)
    assert reason.endswith(": 1 alias(es) not made")
    assert reason.startswith(("not writable by this user (uid ", "on a read-only file system"))
    assert record.read_text() == before and not os.path.lexists(site / ALIAS)


def test_unwritable_site_does_not_matter_to_an_unrecord(
    site: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_module.os, "access", lambda p, mode: False)
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    _aliases, problems = run(site, "unrecord", recorded=True)
    assert problems == []
    assert ALIAS not in record_paths(record)


def test_why_unwritable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class RO:
        f_flag = os.ST_RDONLY

    class RW:
        f_flag = 0

    monkeypatch.setattr(apply_module.os, "statvfs", lambda p: RO())
    assert apply_module._why_unwritable(str(tmp_path)) == "on a read-only file system"
    monkeypatch.setattr(apply_module.os, "statvfs", lambda p: RW())
    assert apply_module._why_unwritable(str(tmp_path)) == f"not writable by this user (uid {os.geteuid()})"

    def boom(p: str) -> None:
        raise OSError("no")

    monkeypatch.setattr(apply_module.os, "statvfs", boom)
    assert apply_module._why_unwritable(str(tmp_path)).startswith("not writable by this user")


def test_a_plan_without_its_scan_writes_nothing(site: Path, record: Path) -> None:
    plan, scan = plan_for(site, "create")
    plan.scans = []
    before = record.read_text()
    try:
        assert apply_plan(plan, dry_run=False) == ([], [])
    finally:
        scan.close()
    assert record.read_text() == before and not os.path.lexists(site / ALIAS)


def test_alias_taken_by_another_symlink_is_left_and_the_row_forgotten(site: Path, record: Path) -> None:
    os.symlink("elsewhere.so", site / ALIAS)
    aliases, problems = run(site, "create")
    assert aliases == []
    assert [p[1] for p in problems] == ["the alias name was taken meanwhile; left alone"]
    assert os.readlink(site / ALIAS) == "elsewhere.so"
    assert ALIAS not in record_paths(record)


def test_forget_keeps_the_row_of_an_equivalent_link(site: Path, record: Path) -> None:
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    os.symlink(f"_speed{MUSL}", site / ALIAS)
    plan, scan = plan_for(site, "create")
    try:
        apply_module._forget(scan, "demo-1.0.dist-info/RECORD", plan.decisions[0])
    finally:
        scan.close()
    assert ALIAS in record_paths(record)


def test_unrecord_never_touches_the_file(site: Path, record: Path) -> None:
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    record.write_text(record.read_text() + f"{ALIAS},,\n")
    aliases, problems = run(site, "unrecord", recorded=True)
    assert aliases == [] and problems == []
    assert os.readlink(site / ALIAS) == f"./_speed{MUSL}"
    assert ALIAS not in record_paths(record)


def _unowned(site: Path, action: Action, recorded: bool, record: str | None = None) -> tuple:
    scan = scan_site(str(site), TWIN_MAP)
    c = scan.candidates[0]
    from soabi_shim.scan import Candidate

    lone = Candidate(c.site, c.rel, None, None, record, c.alias_suffix, c.foreign_suffix)
    plan = Plan(None, [Decision(lone, action, "", recorded)], scans=[scan], sites=[str(site)])
    try:
        return apply_plan(plan, dry_run=False)
    finally:
        scan.close()


@pytest.mark.parametrize("recorded", [False, True])
def test_remove_an_alias_no_record_lists(site: Path, record: Path, recorded: bool) -> None:
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    before = record.read_text()
    aliases, problems = _unowned(site, "remove", recorded)
    assert problems == [] and [a.action for a in aliases] == ["removed"]
    assert not os.path.lexists(site / ALIAS)
    assert record.read_text() == before


def test_a_record_the_scan_does_not_know_is_not_written(site: Path, record: Path, tmp_path: Path) -> None:
    before = record.read_text()
    aliases, problems = _unowned(site, "create", False, str(tmp_path / "gone-1.0.dist-info" / "RECORD"))
    assert (aliases, problems) == ([], [])
    assert not os.path.lexists(site / ALIAS)
    assert record.read_text() == before
