"""The command line: argparse, formatting, and the one place where errors
become an ``ERROR`` line and an exit code.

Exit codes: 0 nothing left to heal; 1 something needs healing or could not
be healed; 2 usage error or bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional, TextIO

from . import __version__
from .errors import SoabiShimError, UsageError

__all__ = ["build_parser", "format_report", "main"]

EXIT_OK, EXIT_ATTENTION, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit is 2 as well
        raise UsageError(message)


def _add_common(p: argparse.ArgumentParser, *, paths: bool = True, dry_run: bool = True) -> None:
    if paths:
        p.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="site directories to work on (default: every site directory of the interpreter)",
        )
    if dry_run:
        p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON (stable schema)")
    p.add_argument("--python", metavar="EXE", help="work for another interpreter (asked in a subprocess)")
    p.add_argument(
        "--include-unowned",
        action="store_true",
        help="also handle extension files that no RECORD lists (their aliases get no RECORD row)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.add_argument("-v", "--verbose", action="store_true", help="also list aliases already present")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="soabi-shim",
        description="Alias CPython extension modules whose file name differs from the "
        "interpreter's only in the libc part (gnu <-> musl), and record the aliases in RECORD.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_common(sub.add_parser("heal", help="create and record the missing aliases"))
    _add_common(sub.add_parser("check", help="list what heal would do; exit 1 if anything"), dry_run=False)
    _add_common(sub.add_parser("undo", help="remove the aliases soabi-shim made, and their RECORD rows"))
    doctor = sub.add_parser("doctor", help="interpreter facts and every extension this interpreter cannot load")
    _add_common(doctor, dry_run=False)
    install = sub.add_parser("install", help="install wheels with pypa/installer, aliases included")
    from .install import add_arguments

    add_arguments(install)
    return parser


def _relative(path: str, sites: Sequence[str]) -> str:
    for site in sites:
        if path.startswith(site.rstrip(os.sep) + os.sep):
            return path[len(site.rstrip(os.sep)) + 1 :]
    return path


def format_report(report: Any, *, quiet: bool = False, verbose: bool = False) -> str:
    """A short, aligned, human table of a :class:`~soabi_shim.report.Report`."""
    lines: list[str] = []
    shown = [a for a in report.aliases if verbose or a.action != "present"]
    if report.command == "doctor" and not quiet:
        facts = report.interpreter.to_json()
        for key in ("executable", "version", "soabi", "libc", "libc_version", "libc_evidence", "machine"):
            lines.append(f"{key + ':':<16} {facts[key]}")
        lines.append(f"{'accepts:':<16} {' '.join(facts['extension_suffixes'])}")
        lines.append(f"{'site dirs:':<16} {' '.join(facts['site_dirs']) or '(none)'}")
        hook = facts["startup_hook"]
        if hook["disabled"]:
            state = "disabled by SOABI_SHIM_DISABLE"
        elif facts["libc"] == "glibc":
            state = "idle: it does nothing on glibc"
        elif hook["fallback_only"]:
            state = "fallback only (SOABI_SHIM_FALLBACK_ONLY)"
        else:
            state = "enabled"
        where = ", ".join(hook["pth_files"]) or "not installed in these site dirs"
        lines.append(f"{'startup hook:':<16} {state}; {where}")
        active = "active" if hook["fallback_installed"] else "not active"
        lines.append(f"{'fallback:':<16} {active} in this process")
        lines.append("")
    if shown and not quiet:
        width = max(len(a.action) for a in shown)
        dwidth = max(len(f"{a.distribution or '(unowned)'} {a.version or ''}".strip()) for a in shown)
        for a in shown:
            dist = f"{a.distribution or '(unowned)'} {a.version or ''}".strip()
            alias = _relative(a.alias, report.sites)
            lines.append(f"{a.action:<{width}}  {dist:<{dwidth}}  {alias} -> {os.path.basename(a.target)}")
    for p in report.problems:
        lines.append(f"problem: {p.path}: {p.reason}")
    if not quiet:
        counts: dict[str, int] = {}
        for a in report.aliases:
            counts[a.action] = counts.get(a.action, 0) + 1
        summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no aliases needed"
        lines.append(
            f"{report.command}: {summary}; {len(report.problems)} problem(s); "
            f"{report.distributions} distribution(s) in {len(report.sites)} site dir(s)"
        )
        if report.command == "doctor" and report.pending:
            python = report.interpreter.executable
            if os.path.realpath(python) == os.path.realpath(sys.executable):
                fix = f"{python} -m soabi_shim heal"
            else:  # soabi-shim may not be installed there: heal it from here
                fix = f"{sys.executable} -m soabi_shim heal --python {python}"
            if any(a.distribution is None for a in report.pending):
                fix += " --include-unowned"
            lines.append(f"fix: {fix}")
    return "\n".join(lines)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "install":
        from .install import run_install

        report = run_install(args)
    else:
        from .pipeline import run

        report = run(
            args.command,
            args.paths or None,
            dry_run=getattr(args, "dry_run", False),
            include_unowned=args.include_unowned,
            python=args.python,
        )
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        text = format_report(report, quiet=args.quiet, verbose=args.verbose)
        if text:
            out.write(text + "\n")
    return EXIT_OK if report.ok else EXIT_ATTENTION


def main(argv: Optional[Sequence[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Entry point of ``soabi-shim`` and ``python -m soabi_shim``."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return _run(args, out)
    except UsageError as exc:
        err.write(f"ERROR {exc}\n")
        return EXIT_USAGE
    except SoabiShimError as exc:
        err.write(f"ERROR {exc}\n")
        return EXIT_ATTENTION
    except KeyboardInterrupt:
        err.write("ERROR interrupted\n")
        return 130


def entrypoint() -> None:
    """The ``soabi-shim`` console script."""
    sys.exit(main())
