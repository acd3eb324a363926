"""The command line: argparse, formatting, and the one place where errors
become an ``ERROR`` line and an exit code (:func:`exit_code_for`).

Exit codes: 0 nothing left to heal; 1 something needs healing or could not
be healed; 2 usage error or bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from . import __version__
from ._names import DISABLE_ENV, FALLBACK_ONLY_ENV
from .errors import SoabiShimError, UsageError

# typing and json only where used: a plain `check` or `heal` needs neither
# (3-6 ms of a command's fixed cost).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional, TextIO

__all__ = ["build_parser", "exit_code_for", "format_report", "main"]

EXIT_OK, EXIT_ATTENTION, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: The packages soabi-shim needs at run time (import name -> distribution).
DEPENDENCIES = {"pluggy": "pluggy", "packaging": "packaging", "installer": "installer"}
#: Shown after every usage error.
HELP_HINT = "see 'soabi-shim --help' (or 'soabi-shim COMMAND --help')"


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal width as
    ``shutil.get_terminal_size`` finds it, so that ``shutil`` (with ``bz2``
    and ``lzma``, 5 ms) is not imported: argparse makes a formatter for
    every ``add_argument``, to check its metavar."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``COLUMNS``, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout (None), not a terminal
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # argparse's own exit is 2 as well
        raise UsageError(f"{message}; {HELP_HINT}")


def _add_common(p: argparse.ArgumentParser, *, paths: bool = True, dry_run: bool = True) -> None:
    if paths:
        p.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="site directories to work on (default: every site directory of the interpreter; "
            "with --root, paths inside ROOT)",
        )
    if dry_run:
        p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON (stable schema)")
    p.add_argument(
        "--python",
        metavar="EXE",
        help="work for another interpreter (asked in a subprocess); with --root, its path inside ROOT",
    )
    p.add_argument(
        "--root",
        metavar="ROOT",
        help="work on the target root file system ROOT from the build host: the interpreter's facts are "
        "read from ROOT as data, nothing in ROOT is run",
    )
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
        epilog=f"Environment: {DISABLE_ENV}=1 turns the start-up hook off; {FALLBACK_ONLY_ENV}=1 makes it "
        "serve imports without writing. Exit codes: 0 nothing left to do, 1 something needs attention, "
        "2 bad arguments or input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_common(sub.add_parser("heal", help="create and record the missing aliases"))
    _add_common(
        sub.add_parser(
            "check",
            help="will every extension module in these site dirs load? exit 1 if not (heal would change something)",
        ),
        dry_run=False,
    )
    _add_common(sub.add_parser("undo", help="remove the aliases soabi-shim made, and their RECORD rows"))
    doctor = sub.add_parser("doctor", help="interpreter facts and every extension this interpreter cannot load")
    _add_common(doctor, dry_run=False)
    _add_install(sub.add_parser("install", help="install wheels with pypa/installer, aliases included"))
    return parser


def _add_install(p: argparse.ArgumentParser) -> None:
    """``install``'s options (those of ``python -m installer``, plus ``--python``).

    Here rather than in :mod:`soabi_shim.install`, so that parsing any command
    does not import installer's machinery (``zipfile``, ``subprocess``).
    """
    p.add_argument("wheel", nargs="+", help="wheel file(s) to install")
    p.add_argument("--destdir", "-d", metavar="path", help="destination directory (prefix to prepend to each file)")
    p.add_argument("--prefix", "-p", metavar="path", help="override prefix to install packages to")
    p.add_argument(
        "--compile-bytecode",
        action="append",
        metavar="level",
        type=int,
        choices=[0, 1, 2],
        help="generate bytecode for the specified optimization level(s) (default=0, 1)",
    )
    p.add_argument("--no-compile-bytecode", action="store_true", help="don't generate bytecode for installed modules")
    p.add_argument("--python", metavar="EXE", help="install for another interpreter (its scheme and suffixes)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.add_argument("-v", "--verbose", action="store_true", help="also list aliases already present")


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def _relative(path: str, sites: Sequence[str]) -> str:
    for site in sites:
        if path.startswith(site.rstrip(os.sep) + os.sep):
            return path[len(site.rstrip(os.sep)) + 1 :]
    return path


def _hook_state(facts: dict[str, Any]) -> str:
    hook = facts["startup_hook"]
    if facts.get("root"):
        state = "not run (--root: nothing in the image runs here)"
    elif hook["disabled"]:
        state = f"disabled by {DISABLE_ENV}"
    elif facts["libc"] == "glibc":
        state = "idle: it does nothing on glibc"
    elif hook["fallback_only"]:
        state = f"fallback only ({FALLBACK_ONLY_ENV})"
    else:
        state = "enabled" + ("; ran in that process" if hook.get("loaded") else "")
    where = ", ".join(hook["pth_files"]) or "not installed in these site dirs"
    return f"{state}; {where}"


def _facts_lines(report: Any) -> list[str]:
    facts = report.interpreter.to_json()
    lines = []
    if facts.get("root"):
        lines.append(f"{'root:':<16} {facts['root']}")
    for key in ("executable", "version", "soabi", "libc", "libc_version", "libc_evidence", "machine"):
        lines.append(f"{key + ':':<16} {facts[key]}")
    lines.append(f"{'accepts:':<16} {' '.join(facts['extension_suffixes'])}")
    lines.append(f"{'site dirs:':<16} {' '.join(facts['site_dirs']) or '(none)'}")
    lines.append(f"{'startup hook:':<16} {_hook_state(facts)}")
    if not facts.get("root"):
        active = "active" if facts["startup_hook"]["fallback_installed"] else "not active"
        lines.append(f"{'fallback:':<16} {active} in that process")
    lines.append("")
    return lines


def _alias_lines(report: Any, verbose: bool) -> list[str]:
    shown = [a for a in report.aliases if verbose or a.action != "present"]
    if not shown:
        return []
    dists = [f"{a.distribution or '(unowned)'} {a.version or ''}".strip() for a in shown]
    width = max(len(a.action) for a in shown)
    dwidth = max(len(d) for d in dists)
    return [
        f"{a.action:<{width}}  {d:<{dwidth}}  {_relative(a.alias, report.sites)} -> {os.path.basename(a.target)}"
        for a, d in zip(shown, dists)
    ]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def is_alias_problem(problem: Any) -> bool:
    """A problem about one extension file: its alias was not made (or removed)."""
    return bool(problem.path.endswith(".so"))


def summary_line(report: Any) -> str:
    """``heal: 2 created, 1 alias not made; 9 distributions in 1 site dir``.

    Every problem line is counted: an extension whose alias was not made,
    or another problem (a RECORD, a plugin, a directory).
    """
    counts: dict[str, int] = {}
    for a in report.aliases:
        counts[a.action] = counts.get(a.action, 0) + 1
    parts = [f"{n} {action}" for action, n in sorted(counts.items())]
    not_made = sum(1 for p in report.problems if is_alias_problem(p))
    other = len(report.problems) - not_made
    verb = "not removed" if report.command == "undo" else "not made"
    if not_made:
        parts.append(f"{_plural(not_made, 'alias', 'aliases')} {verb}")
    if other:
        parts.append(_plural(other, "other problem", "other problems"))
    what = ", ".join(parts) or ("no aliases to remove" if report.command == "undo" else "no aliases needed")
    where = (
        f"{_plural(report.distributions, 'distribution', 'distributions')} in "
        f"{_plural(len(report.sites), 'site dir', 'site dirs')}"
    )
    return f"{report.command}: {what}; {where}"


def fix_command(report: Any, args: Optional[argparse.Namespace] = None) -> str:
    """The command that heals what ``report`` found, runnable as printed.

    It names this interpreter (which has soabi-shim) and passes the target on
    (``--python``, ``--root``, the paths), so it works even when the target
    interpreter has no soabi-shim installed.
    """
    words = [sys.executable or "python3", "-m", "soabi_shim", "heal"]
    if args is not None:
        if getattr(args, "root", None):
            words += ["--root", args.root]
        if getattr(args, "python", None):
            words += ["--python", args.python]
        words += list(getattr(args, "paths", None) or [])
    if any(a.distribution is None for a in report.pending):
        words.append("--include-unowned")
    return " ".join(shlex.quote(w) for w in words)


def format_report(
    report: Any, *, quiet: bool = False, verbose: bool = False, args: Optional[argparse.Namespace] = None
) -> str:
    """A short, aligned, human table of a :class:`~soabi_shim.report.Report`."""
    lines: list[str] = []
    if report.command == "doctor" and not quiet:
        lines += _facts_lines(report)
    if not quiet:
        lines += _alias_lines(report, verbose)
    lines += [f"problem: {p.path}: {p.reason}" for p in report.problems]
    if quiet:
        return "\n".join(lines)
    lines.append(summary_line(report))
    unowned = [a for a in report.pending if a.distribution is None]
    if report.command == "check" and unowned:
        lines.append(
            f"{_plural(len(unowned), 'file', 'files')} no RECORD lists cannot load: "
            "'heal --include-unowned' makes their aliases (without RECORD rows)"
        )
    if report.command in ("doctor", "check") and report.pending:
        lines.append(f"fix: {fix_command(report, args)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def _no_dist_info(paths: Sequence[str]) -> list[tuple[str, str]]:
    """Named directories that are a package (``__init__.py``) and hold no
    ``*.dist-info``: a package directory given instead of its site directory.
    (An empty or loose-files site directory is fine.)"""
    out = []
    for path in paths:
        try:
            names = os.listdir(path)
        except OSError:
            continue
        if "__init__.py" in names and not any(n.endswith((".dist-info", ".egg-info")) for n in names):
            out.append(
                (
                    path,
                    "no *.dist-info here: not a site directory (a package directory?); "
                    "name the site-packages directory that holds it",
                )
            )
    return out


def _pipeline_report(args: argparse.Namespace) -> Any:
    from . import _run as run_command

    return run_command(
        args.command,
        args.paths or None,
        dry_run=getattr(args, "dry_run", False),
        include_unowned=args.include_unowned or args.command == "check",
        python=args.python,
        root=args.root,
    )


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "install":
        from .install import run_install

        report = run_install(args)
    else:
        report = _pipeline_report(args)
        if args.paths:
            from .report import Problem

            report.problems.extend(Problem(p, r) for p, r in _no_dist_info(report.sites))
    if args.json:
        import json

        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        text = format_report(report, quiet=args.quiet, verbose=args.verbose, args=args)
        if text:
            out.write(text + "\n")
    return EXIT_OK if report.ok else EXIT_ATTENTION


def _missing_dependency(exc: ModuleNotFoundError) -> Optional[str]:
    top = (exc.name or "").split(".", 1)[0]
    dist = DEPENDENCIES.get(top)
    if dist is None:
        return None
    return (
        f"soabi-shim needs the package {dist!r}, which is not installed for {sys.executable}: "
        f"install it with '{sys.executable} -m pip install {dist}' (or install soabi-shim with pip, "
        "which installs its dependencies)"
    )


def exit_code_for(exc: BaseException) -> Optional[tuple[int, str]]:
    """The one mapping of errors to exit codes: ``(code, message)``, or
    None for an exception that is a bug (it propagates with its traceback)."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc.args[0]) if exc.args else "usage error"
    if isinstance(exc, SoabiShimError):
        return EXIT_ATTENTION, str(exc)
    if isinstance(exc, ModuleNotFoundError):
        message = _missing_dependency(exc)
        return None if message is None else (EXIT_ATTENTION, message)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_ATTENTION, f"{where}{exc.strerror or exc}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    return None


def _report_error(code: int, message: str, exc: BaseException, as_json: bool, out: TextIO, err: TextIO) -> None:
    if isinstance(exc, UsageError) and len(exc.args) > 1:  # no command: the usage line, then a hint
        err.write(f"{exc.args[1]}\n")
        message = f"{message}; {HELP_HINT}"
    err.write(f"ERROR {message}\n")
    if as_json:
        import json

        out.write(json.dumps({"error": message, "exit_code": code}) + "\n")


def main(argv: Optional[Sequence[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Entry point of ``soabi-shim`` and ``python -m soabi_shim``."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            usage = build_parser().format_usage().strip()
            raise UsageError("no COMMAND given (heal, check, undo, doctor or install)", usage)
        return _run(args, out)
    except BaseException as exc:
        mapped = exit_code_for(exc)
        if mapped is None:
            raise
        code, message = mapped
        _report_error(code, message, exc, "--json" in argv, out, err)
        return code


def entrypoint() -> None:
    """The ``soabi-shim`` console script."""
    sys.exit(main())
