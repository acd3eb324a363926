"""Plan: decide, for each candidate, what to do, with the reason.  No writes.

Heal (and ``check``, ``doctor``): whether each alias exists, may be made or
must be refused.  Undo: which of soabi-shim's aliases to remove and which
RECORD rows to drop.  Both are a list of :class:`Decision`, which
:func:`soabi_shim.apply.apply_plan` carries out.

Every look at the disk goes through the scan's
:class:`~soabi_shim.sitefs.SiteDir`: a directory that resolves outside the
site directory is refused here, and anything that changes under us (a name
created or removed meanwhile) becomes a refusal with the reason, never an
exception.
"""

from __future__ import annotations

import stat

from ._plain import Frozen, Plain
from .errors import OutsideError, SiteError
from .hookspecs import Verdict
from .scan import LINK_PREFIX, Candidate, escapes, link_kind
from .sitefs import SiteDir, describe, file_kind, split

# No typing, dataclasses or functools at run time (a healing start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, Optional

    from .facts import InterpreterFacts
    from .plugins import PluginHost
    from .scan import Distribution, SiteScan

    Action = Literal["create", "record", "present", "occupied", "refuse", "remove", "unrecord"]
else:
    Action = str

__all__ = [
    "Action",
    "Candidate",
    "Decision",
    "Plan",
    "WRITES",
    "Verdict",
    "build_twin_map",
    "decide",
    "make_plan",
    "make_undo_plan",
]

#: What apply does with a decision.
#:
#: heal: ``create`` (row, then link), ``record`` (our alias exists, its RECORD
#: row was lost: add the row), ``present`` (nothing to do), ``occupied`` (a
#: regular file has the name: it loads as it is), ``refuse`` (a problem).
#: undo: ``remove`` (unlink our alias, then drop its row if ``recorded``),
#: ``unrecord`` (drop the row of an alias that is not on disk: a heal was
#: killed between the row and the link).
#: (:data:`Action` is that ``Literal`` for the type checker, ``str`` at run time.)
WRITES: frozenset[Action] = frozenset({"create", "record", "remove", "unrecord"})


class Decision(Frozen):
    _fields = ("candidate", "action", "reason", "recorded")
    __slots__ = _fields
    candidate: Candidate
    action: Action
    reason: str
    recorded: bool  # the alias's RECORD row exists

    def __init__(self, candidate: Candidate, action: Action, reason: str = "", recorded: bool = False) -> None:
        put = object.__setattr__
        put(self, "candidate", candidate)
        put(self, "action", action)
        put(self, "reason", reason)
        put(self, "recorded", recorded)


class Plan(Plain):
    _fields = ("facts", "decisions", "problems", "distributions", "sites", "scans")
    __slots__ = _fields
    facts: Optional[InterpreterFacts]
    decisions: list[Decision]
    problems: list[tuple[str, str]]
    distributions: int
    sites: list[str]
    scans: list[SiteScan]

    def __init__(
        self,
        facts: Optional[InterpreterFacts],
        decisions: Optional[list[Decision]] = None,
        problems: Optional[list[tuple[str, str]]] = None,
        distributions: int = 0,
        sites: Optional[list[str]] = None,
        scans: Optional[list[SiteScan]] = None,
    ) -> None:
        self.facts = facts
        self.decisions = [] if decisions is None else decisions
        self.problems = [] if problems is None else problems
        self.distributions = distributions
        self.sites = [] if sites is None else sites
        self.scans = [] if scans is None else scans


def build_twin_map(facts: InterpreterFacts, host: PluginHost) -> dict[str, str]:
    """Foreign suffix -> the accepted suffix an alias of it should carry."""
    accepted = set(facts.extension_suffixes)
    twin_map: dict[str, str] = {}
    for suffix in facts.accepted:
        for result in host.call("soabi_shim_twin_suffixes", accepted=suffix, facts=facts):
            for foreign in result:
                if isinstance(foreign, str) and foreign not in accepted and foreign.endswith(".so"):
                    twin_map.setdefault(foreign, str(suffix))
    return twin_map


# --- heal ----------------------------------------------------------------


def _occupancy(fs: SiteDir, c: Candidate, recorded: bool) -> tuple[Action, str]:
    try:
        st = fs.lstat(c.alias_rel)
    except FileNotFoundError:
        return "create", ""
    except OutsideError as exc:
        return "refuse", f"its directory resolves outside the site directory ({exc}); not followed"
    except (OSError, SiteError) as exc:
        return "refuse", f"cannot inspect the alias name: {describe(exc)}"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = fs.readlink(c.alias_rel)
        except OSError as exc:
            return "refuse", f"the alias name changed while we looked at it ({describe(exc)}); left alone"
        kind = link_kind(target, c.name)
        if kind == "ours" and not recorded and c.record is not None:
            return "record", ""
        if kind is not None:
            return "present", ""
        return "refuse", f"the alias name is already a symlink to {target!r}, not to {c.name!r}; left alone"
    if stat.S_ISREG(st.st_mode):
        return "occupied", "a regular file already has the interpreter's name; it loads as it is"
    return "refuse", "the alias name is taken by something that is not a file; left alone"


#: The smallest file that can be an ELF object (its 64-bit header).
_MIN_ELF = 64


def _readable(fs: SiteDir, c: Candidate) -> Optional[str]:
    """None if the candidate is a regular file, else the refusal reason.

    A last component that is a symlink (uv's symlink mode links installed
    files into its cache) is followed for reading only, and only to a
    regular file of at least an ELF header's size: never to a device, a
    FIFO or a pseudo file like ``/proc/kmsg`` (which says 0 bytes).
    """
    try:
        st = fs.lstat(c.rel)
        link = stat.S_ISLNK(st.st_mode)
        if link:
            st = fs.stat(c.rel)
    except FileNotFoundError:
        return "listed in RECORD but missing on disk" if c.record else "gone meanwhile"
    except (OSError, SiteError) as exc:
        return f"cannot inspect the file: {describe(exc)}"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({'a symlink to ' if link else ''}{file_kind(st.st_mode)}); left alone"
    if link and st.st_size < _MIN_ELF:
        return f"not a regular file (a symlink to a {st.st_size}-byte file); left alone"
    return None


def decide(
    c: Candidate, facts: InterpreterFacts, host: PluginHost, record_paths: set[str], fs: Optional[SiteDir] = None
) -> Decision:
    """The heal decision for one candidate (``fs``: the open site directory;
    one is opened for this call if not given)."""
    if fs is None:
        try:
            with SiteDir(c.site) as own:
                return decide(c, facts, host, record_paths, own)
        except OSError as exc:
            return Decision(c, "refuse", f"cannot open the site directory: {describe(exc)}")
    recorded = c.alias_rel in record_paths
    action, reason = _occupancy(fs, c, recorded)
    if action != "create":
        return Decision(c, action, reason, recorded)
    why = _readable(fs, c)
    if why is None:
        why = host.check(c, facts)
    if why is not None:
        return Decision(c, "refuse", why, recorded)
    return Decision(c, "create", "", recorded)


def make_plan(scans: list[SiteScan], facts: InterpreterFacts, host: PluginHost) -> Plan:
    """The heal plan (also what ``check`` and ``doctor`` report)."""
    plan = _start(scans, facts)
    for scan in scans:
        if scan.fs is None:
            continue
        rows_by_record = {d.record: {r[0] for r in d.rows} for d in scan.distributions}
        for c in scan.candidates:
            plan.decisions.append(decide(c, facts, host, rows_by_record.get(c.record or "", set()), scan.fs))
    return plan


def _start(scans: list[SiteScan], facts: Optional[InterpreterFacts]) -> Plan:
    plan = Plan(facts, scans=list(scans))
    for scan in scans:
        plan.sites.append(scan.site)
        plan.distributions += len(scan.distributions)
        plan.problems.extend(scan.problems)
    return plan


# --- undo ----------------------------------------------------------------


class _Undo:
    """Recognizes soabi-shim's aliases: a name with an accepted suffix, a
    symlink to ``./<stem><twin suffix>`` (see :data:`~soabi_shim.scan.LINK_PREFIX`)."""

    def __init__(self, fs: SiteDir, twin_map: dict[str, str]) -> None:
        self.fs = fs
        self.twins: dict[str, list[str]] = {}  # accepted suffix -> its foreign twins
        for foreign, accepted in twin_map.items():
            self.twins.setdefault(accepted, []).append(foreign)

    def shapes(self, alias_rel: str) -> list[tuple[str, str, str]]:
        """(twin rel, accepted suffix, foreign suffix) for each twin the alias
        ``alias_rel`` may point to; empty if its name is no alias name."""
        head, name = split(alias_rel)
        prefix = head + "/" if head else ""
        out: list[tuple[str, str, str]] = []
        for accepted, foreigns in self.twins.items():
            stem = name[: -len(accepted)]
            if name.endswith(accepted) and stem.isidentifier():
                out.extend((prefix + stem + foreign, accepted, foreign) for foreign in foreigns)
        return out

    def our_link(self, alias_rel: str) -> Optional[tuple[str, str, str]]:
        """The shape ``alias_rel`` has if it is our symlink now, else None
        (not a link, not ours, gone, or in a directory that leads outside)."""
        shapes = self.shapes(alias_rel)
        if not shapes:
            return None
        try:
            target = self.fs.readlink(alias_rel)
        except (OSError, SiteError):
            return None
        for shape in shapes:
            if target == LINK_PREFIX + split(shape[0])[1]:
                return shape
        return None

    def missing(self, alias_rel: str) -> bool:
        try:
            self.fs.lstat(alias_rel)
        except FileNotFoundError:
            return True
        except (OSError, SiteError):
            return False
        return False


def _undo_candidate(site: str, dist: Optional[Distribution], shape: tuple[str, str, str]) -> Candidate:
    twin_rel, accepted, foreign = shape
    if dist is None:
        return Candidate(site, twin_rel, None, None, None, accepted, foreign)
    return Candidate(site, twin_rel, dist.name, dist.version, dist.record, accepted, foreign)


def _undo_distribution(scan: SiteScan, undo: _Undo, dist: Distribution, lost: list[Candidate]) -> list[Decision]:
    out: list[Decision] = []
    paths = {r[0] for r in dist.rows}
    for rel, digest, size in dist.rows:
        if digest or size or escapes(rel):
            continue
        shape = undo.our_link(rel)
        if shape is not None:
            out.append(Decision(_undo_candidate(scan.site, dist, shape), "remove", recorded=True))
            continue
        # A row for a missing alias whose twin is listed beside it: a heal
        # killed between writing the row and making the link.
        for twin in undo.shapes(rel):
            if twin[0] in paths and undo.missing(rel):
                out.append(Decision(_undo_candidate(scan.site, dist, twin), "unrecord", recorded=True))
                break
    for c in lost:
        # Our alias whose row an installer's RECORD rewrite dropped.
        if c.alias_rel not in paths and undo.our_link(c.alias_rel) is not None:
            out.append(Decision(c, "remove", recorded=False))
    return out


def make_undo_plan(scans: list[SiteScan], twin_map: dict[str, str], *, include_unowned: bool) -> Plan:
    """Remove soabi-shim's aliases and their rows: links of our shape only.

    Regular files, hand-made links (to ``<twin>``) and links of any other
    shape are never touched.  Linear in the number of RECORD rows.
    """
    plan = _start(scans, None)
    for scan in scans:
        if scan.fs is None:
            continue
        undo = _Undo(scan.fs, twin_map)
        by_record: dict[str, list[Candidate]] = {}
        for c in scan.candidates:
            if c.record is not None:
                by_record.setdefault(c.record, []).append(c)
        for dist in scan.distributions:
            plan.decisions.extend(_undo_distribution(scan, undo, dist, by_record.get(dist.record, [])))
        if include_unowned:
            for rel in scan.unowned:
                shape = undo.our_link(rel)
                if shape is not None:
                    plan.decisions.append(Decision(_undo_candidate(scan.site, None, shape), "remove"))
    return plan
