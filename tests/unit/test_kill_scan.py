"""scan.py on fake site directories in ``tmp_path``: which files are
candidates, what a Candidate derives, which RECORD paths are refused.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soabi_shim.record import TMP_PREFIX
from soabi_shim.scan import Candidate, candidate_suffix, escapes, link_kind, scan_site

GNU = ".cpython-311-x86_64-linux-gnu.so"
MUSL = ".cpython-311-x86_64-linux-musl.so"
TWIN_MAP = {MUSL: GNU}  # foreign suffix -> the interpreter's own


def dist(site: Path, name: str, version: str, rows: list[str]) -> Path:
    d = site / f"{name}-{version}.dist-info"
    d.mkdir(parents=True)
    record = d / "RECORD"
    record.write_text("".join(f"{r},,\n" for r in rows) + f"{d.name}/RECORD,,\n")
    return record


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"_speed{MUSL}", MUSL),
        (f"_speed{GNU}", None),  # our own suffix: not a candidate
        (f"{MUSL}", None),  # no stem at all (dot at 0)
        (f"1bad{MUSL}", None),  # stem not an identifier
        (f"_speed{MUSL}.bak", None),  # does not end with .so
        ("_speed.so", None),
        ("noext", None),
    ],
)
def test_candidate_suffix(name: str, expected: str | None) -> None:
    assert candidate_suffix(name, TWIN_MAP) == expected


@pytest.mark.parametrize(
    ("rel", "bad"),
    [
        ("pkg/_x.so", False),
        ("_x.so", False),
        ("/abs/_x.so", True),
        ("../_x.so", True),
        ("pkg/../../_x.so", True),
        ("pkg//_x.so", True),
        ("pkg/", True),
        ("pkg\\_x.so", True),
        ("..x/_x.so", False),
    ],
)
def test_escapes(rel: str, bad: bool) -> None:
    assert escapes(rel) is bad


def test_link_kind() -> None:
    assert link_kind("./a.so", "a.so") == "ours"
    assert link_kind("a.so", "a.so") == "foreign"
    assert link_kind("../a.so", "a.so") is None
    assert link_kind("./b.so", "a.so") is None
    assert link_kind("/x/a.so", "a.so") is None


def test_candidate_derives_its_names() -> None:
    c = Candidate("/site", f"pkg/sub/_speed{MUSL}", "demo", "1.0", "/site/demo-1.0.dist-info/RECORD", GNU, MUSL)
    assert c.path == f"/site/pkg/sub/_speed{MUSL}"
    assert c.name == f"_speed{MUSL}"
    assert c.alias_name == f"_speed{GNU}"
    assert c.alias_rel == f"pkg/sub/_speed{GNU}"
    assert c.alias_path == f"/site/pkg/sub/_speed{GNU}"
    assert c.link_target == f"./_speed{MUSL}"
    top = Candidate("/site", f"_speed{MUSL}", None, None, None, GNU, MUSL)
    assert top.alias_rel == f"_speed{GNU}"
    assert top.alias_path == f"/site/_speed{GNU}"


def test_scan_finds_candidates_with_their_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    record = dist(site, "demo", "2.5", ["demo/__init__.py", f"demo/_speed{MUSL}", f"demo/_own{GNU}"])
    scan = scan_site(str(site), TWIN_MAP)
    try:
        assert scan.problems == []
        assert [(d.name, d.version, d.dist_info, d.record) for d in scan.distributions] == [
            ("demo", "2.5", "demo-2.5.dist-info", str(record))
        ]
        assert scan.distributions[0].record_file is not None
        (c,) = scan.candidates
        assert (c.site, c.rel, c.distribution, c.version, c.record) == (
            str(site),
            f"demo/_speed{MUSL}",
            "demo",
            "2.5",
            str(record),
        )
        assert (c.alias_suffix, c.foreign_suffix) == (GNU, MUSL)
        assert scan.distribution_of(str(record)) is scan.distributions[0]
        assert scan.distribution_of(None) is None
        assert scan.distribution_of("/elsewhere/RECORD") is None
        assert scan.unowned == []
        assert scan.fs is not None
    finally:
        scan.close()


def test_scan_refuses_a_record_path_out_of_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "evil", "1.0", [f"../_speed{MUSL}", f"ok/_speed{MUSL}"])
    scan = scan_site(str(site), TWIN_MAP)
    try:
        assert [c.rel for c in scan.candidates] == [f"ok/_speed{MUSL}"]
        assert scan.problems == [
            (
                os.path.join(str(site), f"../_speed{MUSL}"),
                "RECORD of evil 1.0 names a path that leaves the site directory; refused",
            )
        ]
    finally:
        scan.close()


def test_scan_skips_dist_info_without_record(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "half-1.0.dist-info").mkdir(parents=True)
    (site / "notadist").mkdir()
    scan = scan_site(str(site), TWIN_MAP)
    try:
        assert scan.distributions == [] and scan.problems == [] and scan.candidates == []
    finally:
        scan.close()


def test_scan_reports_an_unlistable_site(tmp_path: Path) -> None:
    scan = scan_site(str(tmp_path / "missing"), TWIN_MAP)
    assert scan.fs is None
    ((path, reason),) = scan.problems
    assert path == str(tmp_path / "missing")
    assert reason.startswith("cannot list the site directory: ")
    scan.close()  # nothing to close: no error


def test_scan_unowned_only_when_asked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "demo", "1.0", [f"demo/_speed{MUSL}"])
    for rel in (f"demo/_speed{MUSL}", f"loose/_free{MUSL}", f"loose/_mine{GNU}", f"__pycache__/_c{MUSL}"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(b"")
    (site / "demo-1.0.dist-info" / f"_d{MUSL}").write_bytes(b"")
    plain = scan_site(str(site), TWIN_MAP)
    plain.close()
    assert plain.unowned == []
    assert [c.rel for c in plain.candidates] == [f"demo/_speed{MUSL}"]
    wide = scan_site(str(site), TWIN_MAP, include_unowned=True)
    wide.close()
    assert wide.unowned == [f"loose/_free{MUSL}", f"loose/_mine{GNU}"]
    unowned = [c for c in wide.candidates if c.distribution is None]
    assert [(c.rel, c.record, c.version, c.alias_suffix) for c in unowned] == [(f"loose/_free{MUSL}", None, None, GNU)]


def test_scan_removes_only_stale_temps(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "demo", "1.0", [])
    stale = site / f"{TMP_PREFIX}999999999.abc.tmp"  # no such pid
    live = site / f"{TMP_PREFIX}{os.getpid()}.abc.tmp"
    stale.write_bytes(b"")
    live.write_bytes(b"")
    scan_site(str(site), TWIN_MAP).close()
    assert not stale.exists()
    assert live.exists()


def test_scan_skips_a_distribution_with_a_broken_record(tmp_path: Path) -> None:
    site = tmp_path / "site"
    d = site / "bad-1.0.dist-info"
    d.mkdir(parents=True)
    (d / "RECORD").write_bytes(b'"unterminated\n')
    dist(site, "good", "1.0", [f"_speed{MUSL}"])
    scan = scan_site(str(site), TWIN_MAP)
    scan.close()
    assert [x.name for x in scan.distributions] == ["good"]
    ((path, reason),) = scan.problems
    assert path == str(d / "RECORD")
    assert reason.endswith("; distribution skipped, RECORD left untouched")


def test_scan_finds_candidates_deep_in_packages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "demo", "1.0", [f"demo/sub/pkg/_speed{MUSL}"])
    scan = scan_site(str(site), TWIN_MAP)
    scan.close()
    assert [(c.rel, c.alias_rel) for c in scan.candidates] == [
        (f"demo/sub/pkg/_speed{MUSL}", f"demo/sub/pkg/_speed{GNU}")
    ]


def test_scan_skips_a_dist_info_symlinked_out_of_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "RECORD").write_text(f"_speed{MUSL},,\n")
    (site / "evil-1.0.dist-info").symlink_to(outside)
    scan = scan_site(str(site), TWIN_MAP)
    scan.close()
    assert scan.distributions == [] and scan.candidates == []
    ((path, reason),) = scan.problems
    assert path == str(site / "evil-1.0.dist-info")
    assert reason.endswith("; distribution skipped")
    assert not reason.startswith(("None", ";"))


@pytest.mark.parametrize("site", ["/", "/site", "/site/", "relative/site", "/a/b/c"])
@pytest.mark.parametrize("rel", ["x.cpython-311-x86_64-linux-musl.so", "pkg/sub/x.cpython-311-x86_64-linux-musl.so"])
def test_candidate_paths_are_os_path_join(site: str, rel: str) -> None:
    c = Candidate(site, rel, "d", "1", None, ".cpython-311-x86_64-linux-gnu.so", ".cpython-311-x86_64-linux-musl.so")
    assert c.path == os.path.join(site, rel)
    assert c.alias_path == os.path.join(site, c.alias_rel)
    assert c.alias_rel == rel.replace("-musl.so", "-gnu.so")
