"""Plan: decide, for each candidate, whether its alias exists, may be made,
or must be refused (with the reason).  No writes happen here.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass, field

from .facts import InterpreterFacts
from .hookspecs import Verdict
from .plugins import PluginHost
from .scan import Candidate, SiteScan, link_kind

__all__ = ["Candidate", "Decision", "Plan", "Verdict", "build_twin_map", "decide", "inside", "make_plan"]


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    # "create", "record" (our alias exists, its RECORD row was lost), "present",
    # "occupied" (a regular file has the name: it loads already), "refuse"
    action: str
    reason: str = ""
    recorded: bool = False  # the alias's RECORD row exists


@dataclass
class Plan:
    facts: InterpreterFacts
    decisions: list[Decision] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    distributions: int = 0
    sites: list[str] = field(default_factory=list)


def inside(path: str, site: str) -> bool:
    """True if the real path of ``path`` is ``site``'s real path or below it."""
    real = os.path.realpath(path)
    root = _site_root(site)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=64)
def _site_root(site: str) -> str:
    return os.path.realpath(site)


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


def _occupancy(c: Candidate, recorded: bool) -> tuple[str, str]:
    try:
        st = os.lstat(c.alias_path)
    except FileNotFoundError:
        return "create", ""
    except OSError as exc:
        return "refuse", f"cannot inspect the alias name: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(c.alias_path)
        kind = link_kind(target, c.name)
        if kind == "ours" and not recorded and c.record is not None:
            return "record", ""
        if kind is not None:
            return "present", ""
        return "refuse", f"the alias name is already a symlink to {target!r}, not to {c.name!r}; left alone"
    if stat.S_ISREG(st.st_mode):
        return "occupied", "a regular file already has the interpreter's name; it loads as it is"
    return "refuse", "the alias name is taken by something that is not a file; left alone"


def decide(c: Candidate, facts: InterpreterFacts, host: PluginHost, record_paths: set[str]) -> Decision:
    recorded = c.alias_rel in record_paths
    action, reason = _occupancy(c, recorded)
    if action != "create":
        return Decision(c, action, reason, recorded)
    if not os.path.lexists(c.path):
        return Decision(c, "refuse", "listed in RECORD but missing on disk", recorded)
    refusal = host.check(c, facts)
    if refusal is not None:
        return Decision(c, "refuse", refusal, recorded)
    return Decision(c, "create", "", recorded)


def make_plan(scans: list[SiteScan], facts: InterpreterFacts, host: PluginHost) -> Plan:
    _site_root.cache_clear()  # one run, one view of where each site dir really is
    plan = Plan(facts)
    for scan in scans:
        plan.sites.append(scan.site)
        plan.distributions += len(scan.distributions)
        plan.problems.extend(scan.problems)
        rows_by_record = {d.record: {r[0] for r in d.rows} for d in scan.distributions}
        for c in scan.candidates:
            plan.decisions.append(decide(c, facts, host, rows_by_record.get(c.record or "", set())))
    return plan
