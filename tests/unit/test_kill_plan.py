"""plan.py over real scans of fake site directories in ``tmp_path``: each heal
decision with its exact reason and ``recorded`` flag, the undo plan's
candidates (top-level aliases, rows it must keep, unowned aliases), the
plan's totals.

The plugin host is a small stand-in (the ELF rules are tested elsewhere):
it records what it was asked and says what it is told to.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from soabi_shim.facts import InterpreterFacts
from soabi_shim.plan import (
    Action,
    Decision,
    Plan,
    build_twin_map,
    decide,
    make_plan,
    make_undo_plan,
)
from soabi_shim.scan import Candidate, SiteScan, scan_site
from soabi_shim.sitefs import SiteDir

GNU = ".cpython-311-x86_64-linux-gnu.so"
MUSL = ".cpython-311-x86_64-linux-musl.so"
TWIN_MAP = {MUSL: GNU}
FOREIGN = f"demo/_speed{MUSL}"
ALIAS = f"demo/_speed{GNU}"
ELF = b"\x7fELF" + b"\0" * 60  # 64 bytes: what the plan lets through to the checks

FACTS = InterpreterFacts(
    "cpython",
    (3, 11, 9),
    "/usr/bin/python3.11",
    "cpython-311-x86_64-linux-gnu",
    GNU,
    (GNU, ".abi3.so", ".so"),
    "linux",
    "glibc",
    "test",
    None,
    None,
    (),
    None,
)


class Host:
    """Stands in for PluginHost: ``check`` says ``verdict``; ``call`` returns ``twins``."""

    def __init__(self, verdict: Optional[str] = None, twins: Optional[list[Any]] = None) -> None:
        self.verdict = verdict
        self.twins = twins or []
        self.checked: list[tuple[Candidate, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def check(self, candidate: Candidate, facts: Any) -> Optional[str]:
        self.checked.append((candidate, facts))
        return self.verdict

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        self.calls.append((hook, kwargs))
        return [self.twins]


def install(site: Path, name: str, files: dict[str, bytes], extra_rows: str = "") -> Path:
    """An installed distribution ``name 1.0``: its files (hashed rows) and RECORD."""
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    d = site / f"{name}-1.0.dist-info"
    d.mkdir(parents=True)
    record = d / "RECORD"
    rows = "".join(f"{rel},sha256=x,{len(data)}\n" for rel, data in files.items())
    record.write_text(rows + extra_rows + f"{d.name}/RECORD,,\n")
    return record


@pytest.fixture
def site(tmp_path: Path) -> Path:
    s = tmp_path / "site"
    s.mkdir()
    return s


@pytest.fixture
def record(site: Path) -> Path:
    return install(site, "demo", {FOREIGN: ELF})


@pytest.fixture
def scans() -> Iterator[list[SiteScan]]:
    opened: list[SiteScan] = []
    yield opened
    for s in opened:
        s.close()


def scan(scans: list[SiteScan], site: Path, *, include_unowned: bool = False) -> SiteScan:
    s = scan_site(str(site), TWIN_MAP, include_unowned=include_unowned)
    scans.append(s)
    return s


def candidate(site: Path, record: Optional[Path], rel: str = FOREIGN) -> Candidate:
    if record is None:
        return Candidate(str(site), rel, None, None, None, GNU, MUSL)
    return Candidate(str(site), rel, "demo", "1.0", str(record), GNU, MUSL)


def decide_in(site: Path, c: Candidate, host: Host, *, recorded: bool = False) -> Decision:
    with SiteDir(str(site)) as fs:
        return decide(c, FACTS, host, {c.alias_rel} if recorded else set(), fs)  # type: ignore[arg-type]


# --- values ----------------------------------------------------------------


def test_decision_defaults(site: Path) -> None:
    d = Decision(candidate(site, None), "present")
    assert d.reason == "" and d.recorded is False


def test_plan_defaults_and_given_lists() -> None:
    empty = Plan(None)
    assert (empty.facts, empty.decisions, empty.problems, empty.distributions, empty.sites, empty.scans) == (
        None,
        [],
        [],
        0,
        [],
        [],
    )
    decisions: list[Decision] = []
    problems = [("x", "y")]
    sites = ["/s"]
    scans: list[SiteScan] = []
    plan = Plan(FACTS, decisions, problems, 3, sites, scans)
    assert plan.facts is FACTS and plan.distributions == 3
    assert plan.decisions is decisions and plan.problems is problems
    assert plan.sites is sites and plan.scans is scans


# --- build_twin_map --------------------------------------------------------


def test_twin_map_keeps_only_foreign_so_suffixes() -> None:
    host = Host(twins=[MUSL, None, 3, b".x.so", GNU, ".abi3.so", ".cpython-311-x86_64-linux-musl.pyd"])
    assert build_twin_map(FACTS, host) == {MUSL: GNU}  # type: ignore[arg-type]
    assert [(hook, str(kw["accepted"]), kw["facts"]) for hook, kw in host.calls] == [
        ("soabi_shim_twin_suffixes", GNU, FACTS)
    ]


# --- heal: decide ----------------------------------------------------------


def test_create_asks_the_host_with_the_facts(site: Path, record: Path) -> None:
    c = candidate(site, record)
    host = Host()
    assert decide_in(site, c, host) == Decision(c, "create", "", False)
    assert host.checked == [(c, FACTS)]


def test_create_when_the_row_is_there_but_not_the_link(site: Path, record: Path) -> None:
    c = candidate(site, record)
    assert decide_in(site, c, Host(), recorded=True) == Decision(c, "create", "", True)


def test_host_refusal_keeps_recorded(site: Path, record: Path) -> None:
    c = candidate(site, record)
    assert decide_in(site, c, Host("linked against musl"), recorded=True) == Decision(
        c, "refuse", "linked against musl", True
    )


def test_decide_opens_the_site_itself(site: Path, record: Path) -> None:
    c = candidate(site, record)
    host = Host()
    assert decide(c, FACTS, host, {ALIAS}) == Decision(c, "create", "", True)  # type: ignore[arg-type]
    assert host.checked == [(c, FACTS)]
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    assert decide(c, FACTS, host, set()) == Decision(c, "record", "", False)  # type: ignore[arg-type]


def test_decide_on_a_site_that_cannot_be_opened(tmp_path: Path) -> None:
    c = candidate(tmp_path / "gone", None)
    assert decide(c, FACTS, Host(), set()) == Decision(  # type: ignore[arg-type]
        c, "refuse", f"cannot open the site directory: {os.strerror(errno.ENOENT)}"
    )


@pytest.mark.parametrize("recorded", [False, True])
def test_alias_links(site: Path, record: Path, recorded: bool) -> None:
    c = candidate(site, record)
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    ours: Action = "present" if recorded else "record"
    assert decide_in(site, c, Host(), recorded=recorded) == Decision(c, ours, "", recorded)
    os.unlink(site / ALIAS)
    os.symlink(f"_speed{MUSL}", site / ALIAS)  # hand-made: never recorded by us
    assert decide_in(site, c, Host(), recorded=recorded) == Decision(c, "present", "", recorded)
    os.unlink(site / ALIAS)
    os.symlink("elsewhere.so", site / ALIAS)
    assert decide_in(site, c, Host(), recorded=recorded) == Decision(
        c,
        "refuse",
        f"the alias name is already a symlink to 'elsewhere.so', not to '_speed{MUSL}'; left alone",
        recorded,
    )


def test_our_link_of_an_unowned_file_is_present(site: Path) -> None:
    (site / "demo").mkdir()
    (site / FOREIGN).write_bytes(ELF)
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    c = candidate(site, None)
    assert decide_in(site, c, Host()) == Decision(c, "present", "", False)


@pytest.mark.parametrize("recorded", [False, True])
def test_alias_name_taken(site: Path, record: Path, recorded: bool) -> None:
    c = candidate(site, record)
    (site / ALIAS).write_bytes(b"theirs")
    assert decide_in(site, c, Host(), recorded=recorded) == Decision(
        c, "occupied", "a regular file already has the interpreter's name; it loads as it is", recorded
    )
    (site / ALIAS).unlink()
    (site / ALIAS).mkdir()
    assert decide_in(site, c, Host(), recorded=recorded) == Decision(
        c, "refuse", "the alias name is taken by something that is not a file; left alone", recorded
    )


def test_alias_directory_outside_is_refused(site: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"_speed{MUSL}").write_bytes(ELF)
    (site / "demo").symlink_to(outside)
    c = candidate(site, None)
    d = decide_in(site, c, Host())
    assert d.action == "refuse"
    assert d.reason == (
        f"its directory resolves outside the site directory ('demo' is a symlink to {str(outside)!r}, "
        "outside the site directory); not followed"
    )


def test_alias_directory_not_a_directory(site: Path) -> None:
    (site / "demo").write_bytes(b"a file")
    c = candidate(site, None)
    assert decide_in(site, c, Host()) == Decision(
        c, "refuse", f"cannot inspect the alias name: {os.strerror(errno.ENOTDIR)}"
    )


class VanishingLinks(SiteDir):
    """A site directory whose names are removed right after a look at them."""

    def lstat(self, rel: str) -> os.stat_result:
        st = super().lstat(rel)
        os.unlink(self.abspath(rel))
        return st


def test_alias_removed_while_we_look(site: Path, record: Path) -> None:
    c = candidate(site, record)
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    with VanishingLinks(str(site)) as fs:
        d = decide(c, FACTS, Host(), set(), fs)  # type: ignore[arg-type]
    assert d == Decision(
        c,
        "refuse",
        f"the alias name changed while we looked at it ({os.strerror(errno.ENOENT)}); left alone",
    )


# --- heal: the candidate itself --------------------------------------------


def test_missing_candidate(site: Path, record: Path) -> None:
    (site / FOREIGN).unlink()
    host = Host()
    listed = candidate(site, record)
    assert decide_in(site, listed, host, recorded=True) == Decision(
        listed, "refuse", "listed in RECORD but missing on disk", True
    )
    unowned = candidate(site, None)
    assert decide_in(site, unowned, host) == Decision(unowned, "refuse", "gone meanwhile")
    assert host.checked == []


def test_candidate_in_a_symlink_loop(site: Path) -> None:
    (site / "demo").mkdir()
    os.symlink(f"_speed{MUSL}", site / FOREIGN)
    c = candidate(site, None)
    assert decide_in(site, c, Host()) == Decision(c, "refuse", f"cannot inspect the file: {os.strerror(errno.ELOOP)}")


def test_candidate_not_a_regular_file(site: Path) -> None:
    (site / FOREIGN).mkdir(parents=True)
    c = candidate(site, None)
    assert decide_in(site, c, Host()) == Decision(c, "refuse", "not a regular file (a directory); left alone")
    os.rmdir(site / FOREIGN)
    (site / "real_dir").mkdir()
    os.symlink("../real_dir", site / FOREIGN)
    assert decide_in(site, c, Host()) == Decision(
        c, "refuse", "not a regular file (a symlink to a directory); left alone"
    )


@pytest.mark.parametrize(("size", "action"), [(63, "refuse"), (64, "create"), (4096, "create")])
def test_candidate_symlink_is_followed_to_a_big_enough_file(site: Path, size: int, action: str) -> None:
    """uv's symlink mode: the installed file is a link into its cache."""
    (site / "cache").mkdir()
    (site / "cache" / "blob").write_bytes(b"\x7fELF" + b"\0" * (size - 4))
    (site / "demo").mkdir()
    os.symlink("../cache/blob", site / FOREIGN)
    c = candidate(site, None)
    host = Host()
    d = decide_in(site, c, host)
    assert d.action == action
    if action == "refuse":
        assert d.reason == f"not a regular file (a symlink to a {size}-byte file); left alone"
        assert host.checked == []
    else:
        assert host.checked == [(c, FACTS)]


def test_small_regular_candidate_is_left_to_the_checks(site: Path) -> None:
    """The size floor is for symlinked files only; a plain file goes to the checks."""
    (site / "demo").mkdir()
    (site / FOREIGN).write_bytes(b"\x7fELF")
    c = candidate(site, None)
    host = Host("not an ELF object")
    assert decide_in(site, c, host) == Decision(c, "refuse", "not an ELF object")
    assert host.checked == [(c, FACTS)]


# --- heal: make_plan -------------------------------------------------------


def test_make_plan_counts_every_scan(tmp_path: Path, scans: list[SiteScan]) -> None:
    gone = tmp_path / "gone"
    one = tmp_path / "one"
    two = tmp_path / "two"
    install(one, "demo", {FOREIGN: ELF})
    install(two, "demo", {FOREIGN: ELF})
    install(two, "pure", {"pure/__init__.py": b""})
    host = Host()
    plan = make_plan([scan(scans, gone), scan(scans, one), scan(scans, two)], FACTS, host)  # type: ignore[arg-type]
    assert plan.facts is FACTS
    assert plan.sites == [str(gone), str(one), str(two)]
    assert plan.distributions == 3
    assert plan.scans == scans
    assert [p[0] for p in plan.problems] == [str(gone)]
    assert [(d.candidate.site, d.action, d.recorded) for d in plan.decisions] == [
        (str(one), "create", False),
        (str(two), "create", False),
    ]


def test_make_plan_sees_recorded_rows(site: Path, scans: list[SiteScan]) -> None:
    install(site, "demo", {FOREIGN: ELF}, extra_rows=f"{ALIAS},,\n")
    plan = make_plan([scan(scans, site)], FACTS, Host())  # type: ignore[arg-type]
    assert [(d.action, d.recorded) for d in plan.decisions] == [("create", True)]


def test_make_plan_looks_through_the_scanned_directory(site: Path, tmp_path: Path, scans: list[SiteScan]) -> None:
    """The plan looks at the directory the scan opened, even if its path now names another one."""
    install(site, "demo", {FOREIGN: ELF})
    s = scan(scans, site)
    site.rename(tmp_path / "moved")
    site.mkdir()
    plan = make_plan([s], FACTS, Host())  # type: ignore[arg-type]
    assert [(d.action, d.reason) for d in plan.decisions] == [("create", "")]


# --- undo ------------------------------------------------------------------


def test_undo_of_a_top_level_alias(site: Path, scans: list[SiteScan]) -> None:
    twin = f"_top{MUSL}"
    alias = f"_top{GNU}"
    record = install(site, "demo", {twin: ELF, "demo/__init__.py": b""}, extra_rows=f"{alias},,\n")
    install(site, "pure", {"pure/__init__.py": b""})
    os.symlink(f"./{twin}", site / alias)
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    c = Candidate(str(site), twin, "demo", "1.0", str(record), GNU, MUSL)
    assert plan.decisions == [Decision(c, "remove", "", True)]
    assert c.alias_rel == alias


def test_undo_drops_the_row_of_a_top_level_alias_never_made(site: Path, scans: list[SiteScan]) -> None:
    twin = f"_top{MUSL}"
    record = install(site, "demo", {twin: ELF}, extra_rows=f"_top{GNU},,\n")
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.decisions == [
        Decision(Candidate(str(site), twin, "demo", "1.0", str(record), GNU, MUSL), "unrecord", "", True)
    ]


@pytest.mark.parametrize("row", [f"{ALIAS},sha256=x,", f"{ALIAS},,12", f"{ALIAS},sha256=x,12"])
def test_undo_leaves_installed_rows(site: Path, scans: list[SiteScan], row: str) -> None:
    """A row with a hash or a size was written by an installer: not our alias."""
    install(site, "demo", {FOREIGN: ELF}, extra_rows=row + "\n")
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.decisions == []


def test_undo_keeps_the_row_of_a_name_taken_by_a_file(site: Path, scans: list[SiteScan]) -> None:
    install(site, "demo", {FOREIGN: ELF}, extra_rows=f"{ALIAS},,\n")
    (site / ALIAS).write_bytes(b"theirs")
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.decisions == []


@pytest.mark.parametrize("layout", ["outside", "file"])
def test_undo_keeps_the_row_of_an_alias_it_cannot_look_at(
    site: Path, tmp_path: Path, scans: list[SiteScan], layout: str
) -> None:
    """Its directory leads outside or is no directory: whether the alias is missing is unknown."""
    install(site, "pure", {"pure/__init__.py": b""})
    record = site / "demo-1.0.dist-info" / "RECORD"
    record.parent.mkdir()
    record.write_text(f"{FOREIGN},sha256=x,64\n{ALIAS},,\n{record.parent.name}/RECORD,,\n")
    if layout == "outside":
        (tmp_path / "outside").mkdir()
        (site / "demo").symlink_to(tmp_path / "outside")
    else:
        (site / "demo").write_bytes(b"not a directory")
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.decisions == []


def test_undo_ignores_a_link_of_our_shape_without_the_accepted_suffix(site: Path, scans: list[SiteScan]) -> None:
    other = "demo/_speed" + GNU[: -len(".so")] + ".py"  # as long as the alias name, another suffix
    install(site, "demo", {FOREIGN: ELF}, extra_rows=f"{other},,\n")
    os.symlink(f"./_speed{MUSL}", site / other)
    plan = make_undo_plan([scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.decisions == []


def test_undo_goes_on_past_a_site_it_cannot_open(tmp_path: Path, scans: list[SiteScan]) -> None:
    site = tmp_path / "site"
    record = install(site, "demo", {FOREIGN: ELF}, extra_rows=f"{ALIAS},,\n")
    os.symlink(f"./_speed{MUSL}", site / ALIAS)
    plan = make_undo_plan([scan(scans, tmp_path / "gone"), scan(scans, site)], TWIN_MAP, include_unowned=False)
    assert plan.sites == [str(tmp_path / "gone"), str(site)]
    assert plan.decisions == [Decision(candidate(site, record), "remove", "", True)]


def test_undo_of_unowned_aliases(site: Path, scans: list[SiteScan]) -> None:
    (site / "pkg").mkdir()
    (site / f"pkg/_speed{MUSL}").write_bytes(ELF)
    os.symlink(f"./_speed{MUSL}", site / f"pkg/_speed{GNU}")
    (site / f"pkg/_hand{MUSL}").write_bytes(ELF)
    os.symlink(f"_hand{MUSL}", site / f"pkg/_hand{GNU}")  # hand-made: never ours
    (site / f"pkg/_file{GNU}").write_bytes(ELF)
    install(site, "pure", {"pure/__init__.py": b""})
    assert make_undo_plan([scan(scans, site, include_unowned=True)], TWIN_MAP, include_unowned=False).decisions == []
    plan = make_undo_plan([scan(scans, site, include_unowned=True)], TWIN_MAP, include_unowned=True)
    c = Candidate(str(site), f"pkg/_speed{MUSL}", None, None, None, GNU, MUSL)
    assert plan.decisions == [Decision(c, "remove", "", False)]
