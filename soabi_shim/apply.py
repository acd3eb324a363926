"""Apply a plan: the only writer.  Heal: record, then link.  Undo: unlink,
then unrecord.

Order matters for a kill at any instant:

* heal appends the alias's ``path,,`` row to RECORD *before* creating the
  symlink, so every alias soabi-shim makes is recorded from the moment it
  exists; a kill in between leaves a row for a missing file, which the next
  heal completes (uninstallers skip missing files);
* undo removes the symlink *before* its row, for the same reason.

Symlinks are created with a single ``symlinkat(2)``, which fails if anything
holds the name: nothing is ever overwritten.  Every operation goes through
the scan's :class:`~soabi_shim.sitefs.SiteDir`, so nothing outside the site
directory is written, even if a directory is swapped for a symlink after
the plan; an ``OSError`` from something that changed under us becomes a
problem, never an exception.
"""

from __future__ import annotations

import os

from .errors import RecordError, SiteError
from .plan import WRITES
from .record import append_rows_at, remove_rows_at
from .report import Alias
from .scan import link_kind
from .sitefs import describe

# No typing or dataclasses at run time (a healing start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .plan import Decision, Plan
    from .report import AliasAction
    from .scan import SiteScan

__all__ = ["apply_plan"]


class _Outcome:
    __slots__ = ("aliases", "problems")

    def __init__(self) -> None:
        self.aliases: list[Alias] = []
        self.problems: list[tuple[str, str]] = []

    def alias(self, d: Decision, action: AliasAction) -> None:
        c = d.candidate
        self.aliases.append(Alias(c.distribution, c.version, c.alias_path, c.path, action))

    def problem(self, d: Decision, reason: str) -> None:
        self.problems.append((d.candidate.path, reason))


#: What a decision that writes nothing (or a dry run) reports.
_DRY: dict[str, AliasAction] = {
    "create": "would-create",
    "record": "would-create",
    "remove": "would-remove",
    "present": "present",
}


def apply_plan(plan: Plan, *, dry_run: bool) -> tuple[list[Alias], list[tuple[str, str]]]:
    """Carry out ``plan`` (or, with ``dry_run``, say what it would do);
    return the aliases and the problems."""
    out = _Outcome()
    groups: dict[tuple[str, Optional[str]], list[Decision]] = {}
    for d in plan.decisions:
        if d.action == "refuse":
            out.problem(d, d.reason)
        elif d.action in WRITES and not dry_run:
            groups.setdefault((d.candidate.site, d.candidate.record), []).append(d)
        elif d.action in _DRY:
            out.alias(d, _DRY[d.action])
    scans = {s.site: s for s in plan.scans}
    unwritable = _unwritable(groups, out)
    for (site, record), decisions in groups.items():
        scan = scans.get(site)
        if scan is None or scan.fs is None or site in unwritable:
            continue
        heal = [d for d in decisions if d.action in ("create", "record")]
        if heal:
            _heal_record(scan, record, heal, out)
        undo = [d for d in decisions if d.action in ("remove", "unrecord")]
        if undo:
            _undo_record(scan, record, undo, out)
    return out.aliases, out.problems


def _unwritable(groups: dict[tuple[str, Optional[str]], list[Decision]], out: _Outcome) -> set[str]:
    """Site directories we cannot write to: one problem each."""
    counts: dict[str, int] = {}
    for (site, _record), decisions in groups.items():
        counts[site] = counts.get(site, 0) + sum(d.action in ("create", "record") for d in decisions)
    bad = {site for site, n in counts.items() if n and not os.access(site, os.W_OK)}
    for site in sorted(bad):
        out.problems.append((site, f"{_why_unwritable(site)}: {counts[site]} alias(es) not made"))
    return bad


def _why_unwritable(site: str) -> str:
    try:
        if os.statvfs(site).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return f"not writable by this user (uid {os.geteuid()})"


# --- heal ----------------------------------------------------------------


def _heal_record(scan: SiteScan, record: Optional[str], decisions: list[Decision], out: _Outcome) -> None:
    dist = scan.distribution_of(record)
    if record is not None:
        if dist is None or scan.fs is None:
            return
        try:
            fresh = [d.candidate.alias_rel for d in decisions if not d.recorded]
            append_rows_at(scan.fs, dist.dist_info + "/RECORD", fresh, dist.record_file)
        except RecordError as exc:
            for d in decisions:
                out.problem(d, str(exc))
            return
    for d in decisions:
        outcome = _link(scan, d) if d.action == "create" else None
        if outcome is None:
            out.alias(d, "created")
        elif outcome == "present":
            out.alias(d, "present")
        else:
            out.problem(d, outcome)
            if dist is not None and not d.recorded:
                _forget(scan, dist.dist_info + "/RECORD", d)


def _link(scan: SiteScan, d: Decision) -> Optional[str]:
    """Create the symlink; None on success, "present" or a reason otherwise."""
    c = d.candidate
    assert scan.fs is not None
    try:
        scan.fs.symlink(c.link_target, c.alias_rel)
    except FileExistsError:
        try:
            if link_kind(scan.fs.readlink(c.alias_rel), c.name) is not None:
                return "present"  # another process made it meanwhile
        except (OSError, SiteError):
            pass
        return "the alias name was taken meanwhile; left alone"
    except (OSError, SiteError) as exc:
        return f"cannot create the alias: {describe(exc)}"
    return None


def _forget(scan: SiteScan, record_rel: str, d: Decision) -> None:
    """Drop a row we just added when its link could not be made by us
    (unless another process made an equivalent link meanwhile)."""
    c = d.candidate
    assert scan.fs is not None
    try:
        if link_kind(scan.fs.readlink(c.alias_rel), c.name) is not None:
            return
    except (OSError, SiteError):
        pass
    try:
        remove_rows_at(scan.fs, record_rel, [c.alias_rel])
    except RecordError:
        pass


# --- undo ----------------------------------------------------------------


def _undo_record(scan: SiteScan, record: Optional[str], decisions: list[Decision], out: _Outcome) -> None:
    doomed = []
    for d in decisions:
        gone = d.action == "unrecord" or _unlink(scan, d, out)
        if gone and d.recorded:
            doomed.append(d.candidate.alias_rel)
    dist = scan.distribution_of(record)
    if doomed and dist is not None and scan.fs is not None:
        try:
            remove_rows_at(scan.fs, dist.dist_info + "/RECORD", doomed, dist.record_file)
        except RecordError as exc:
            out.problems.append((dist.record, str(exc)))


def _unlink(scan: SiteScan, d: Decision, out: _Outcome) -> bool:
    """Remove our alias; True if it is gone now (its row may go too)."""
    c = d.candidate
    assert scan.fs is not None
    try:
        if scan.fs.unlink_symlink(c.alias_rel, c.link_target):
            out.alias(d, "removed")
            return True
    except FileNotFoundError:
        return True  # removed meanwhile (another undo)
    except (OSError, SiteError) as exc:
        out.problem(d, f"cannot remove the alias: {describe(exc)}")
        return False
    out.problem(d, "the alias changed while we looked at it; left alone")
    return False
