"""The one pipeline every entry point calls:

    interpreter facts -> scan -> plan -> apply -> report

:func:`run` is used by the CLI, the Python API, the start-up hook and the
installer front-end alike.
"""

from __future__ import annotations

import os

from .apply import apply_plan
from .errors import UsageError
from .facts import gather_facts
from .plan import build_twin_map, make_plan, make_undo_plan
from .plugins import get_plugin_host
from .report import Problem, Report
from .scan import scan_site

# No typing or collections at run time (a healing start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Optional

    from .facts import InterpreterFacts
    from .plugins import PluginHost

__all__ = ["COMMANDS", "resolve_sites", "run"]

COMMANDS = ("heal", "check", "undo", "doctor")


def resolve_sites(paths: Optional[Iterable[str]], facts: InterpreterFacts) -> list[str]:
    """The site directories to work on; :class:`UsageError` for bad paths."""
    if paths is None:
        return list(facts.site_dirs)
    sites: list[str] = []
    seen: set[str] = set()
    for p in paths:
        path = os.fspath(p)
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such directory")
        if not os.path.isdir(path):
            raise UsageError(f"{path}: not a directory")
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            sites.append(os.path.abspath(path))
    return sites


def run(
    command: str,
    paths: Optional[Sequence[str]] = None,
    *,
    dry_run: bool = False,
    include_unowned: bool = False,
    python: Optional[str] = None,
    facts: Optional[InterpreterFacts] = None,
    plugins: Optional[list[object]] = None,
    host: Optional[PluginHost] = None,
) -> Report:
    """Run ``command`` (heal, check, undo or doctor) over ``paths``.

    ``check`` and ``doctor`` never write; ``doctor`` also looks at files no
    RECORD lists.  The library never prints: everything is in the report.
    """
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}")
    if facts is None:
        facts = gather_facts(python, libc_version=command == "doctor")
    sites = resolve_sites(paths, facts)
    if host is None:
        host = get_plugin_host(plugins)
    twin_map = build_twin_map(facts, host)
    unowned = include_unowned or command == "doctor"
    scans = [scan_site(site, twin_map, include_unowned=unowned) for site in sites]
    try:
        if command == "undo":
            plan = make_undo_plan(scans, twin_map, include_unowned=include_unowned)
        else:
            plan = make_plan(scans, facts, host)
        aliases, problems = apply_plan(plan, dry_run=dry_run or command not in ("heal", "undo"))
    finally:
        for scan in scans:
            scan.close()
    report = Report(command, facts, sites=sites)
    report.distributions = plan.distributions
    problems = plan.problems + problems
    problems.extend((f"plugin:{name}", message) for name, message in host.failures)
    report.aliases = aliases
    report.problems = [Problem(path, reason) for path, reason in problems]
    before = len(host.failures)
    host.call("soabi_shim_report", report=report)
    report.problems.extend(Problem(f"plugin:{n}", m) for n, m in host.failures[before:])
    return report
