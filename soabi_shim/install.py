"""``soabi-shim install``: pypa/installer with the aliases made at install time.

Options, defaults and meaning follow ``python -m installer``.  The aliases
are created in :meth:`~installer.destinations.WheelDestination.finalize_installation`
(pypa/installer's documented point for extra RECORD rows), relative to the
final location, so they are right under ``--destdir`` staging too.  They go
through the same plan (:func:`soabi_shim.plan.decide`) as ``heal``.

A failed install removes every file and directory it created.  Only the
aliases this install *created* get a RECORD row: a name that was already
there (another distribution's file, a hand-made link) is never recorded, so
``pip uninstall`` of this wheel never deletes what it did not make.

Errors: a wheel that pypa/installer rejects is a :class:`UsageError` (exit
2, "invalid wheel"); a failure of the file system (``PermissionError``, a
full disk, a name that appeared meanwhile) is an :class:`InstallError`
with the system's own message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from .errors import SoabiShimError, UsageError
from .facts import InterpreterFacts, gather_facts
from .plan import build_twin_map, decide
from .plugins import PluginHost, get_plugin_host
from .report import Alias, Problem, Report
from .scan import Candidate, candidate_suffix

__all__ = ["InstallError", "install_wheels", "run_install"]


class InstallError(SoabiShimError):
    """The install could not be done (exit 1); the message says why."""


def _invalid_wheel_errors() -> tuple[type[BaseException], ...]:
    """pypa/installer's own errors and what a malformed archive raises."""
    import zlib

    from installer.exceptions import InstallerError
    from installer.records import InvalidRecordEntry

    return (InstallerError, InvalidRecordEntry, zipfile.BadZipFile, zlib.error, KeyError, ValueError)


_SCHEME_SCRIPT = """
import json, sys, sysconfig
prefix = sys.argv[1] or None
vars = {} if prefix is None else {"base": prefix, "platbase": prefix}
paths = sysconfig.get_paths(vars=vars)
base = prefix or sysconfig.get_config_var("base")
paths["headers"] = sysconfig.get_path("include", vars={"installed_base": base})
print(json.dumps(paths))
"""


def _scheme(python: Optional[str], prefix: Optional[str], name: str) -> dict[str, str]:
    exe = python or sys.executable
    proc = subprocess.run([exe, "-E", "-c", _SCHEME_SCRIPT, prefix or ""], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InstallError(f"cannot read the install scheme of {exe}: {proc.stderr.strip() or proc.returncode}")
    paths: dict[str, str] = json.loads(proc.stdout)
    paths["headers"] = os.path.join(paths["headers"], name)
    return paths


def _check_wheel(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if not path.endswith(".whl"):
        raise UsageError(f"{path}: not a wheel (.whl) file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a valid wheel (not a zip archive)")


def _check_platform(wheel: str, facts: InterpreterFacts) -> None:
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _name, _ver, _build, tags = parse_wheel_filename(os.path.basename(wheel))
    except InvalidWheelFilename as exc:
        raise UsageError(f"{wheel}: {exc}") from None
    if os.path.realpath(facts.executable) != os.path.realpath(sys.executable):
        return  # packaging can only list the running interpreter's tags
    if not set(tags) & set(sys_tags()):
        shown = ", ".join(sorted(str(t) for t in tags))
        raise UsageError(f"{os.path.basename(wheel)}: not supported by this interpreter (tags {shown})")


def _already_installed(name: str, scheme: dict[str, str], destdir: Optional[str]) -> Optional[str]:
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name)
    for key in ("purelib", "platlib"):
        root = _staged(scheme[key], destdir)
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for entry in entries:
            if (
                entry.endswith(".dist-info")
                and canonicalize_name(entry[: -len(".dist-info")].partition("-")[0]) == wanted
            ):
                return os.path.join(root, entry)
    return None


def _staged(path: str, destdir: Optional[str]) -> str:
    if destdir is None:
        return os.path.abspath(path)
    absolute = os.path.abspath(path)
    return os.path.join(destdir, os.path.relpath(absolute, os.path.splitdrive(absolute)[0] + os.sep))


def _destination_class() -> Any:
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import RecordEntry

    class AliasingDestination(SchemeDictionaryDestination):
        """Writes the wheel, then the aliases, then RECORD (with their rows)."""

        facts: InterpreterFacts
        host: PluginHost
        twin_map: dict[str, str]
        distribution: str
        version: str
        created: list[str]
        aliases: list[Alias]
        problems: list[tuple[str, str]]

        def write_to_fs(self, scheme: Any, path: str, stream: Any, is_executable: bool) -> Any:
            target = os.path.join(_staged(self.scheme_dict[scheme], self.destdir), *path.split("/"))
            parent = os.path.dirname(target)
            missing = []
            while parent and not os.path.exists(parent):
                missing.append(parent)
                parent = os.path.dirname(parent)
            self.created.extend(reversed(missing))
            entry = super().write_to_fs(scheme, path, stream, is_executable)
            self.created.append(target)
            return entry

        def finalize_installation(self, scheme: Any, record_file_path: str, records: Iterable[Any]) -> None:
            record_list = list(records)
            extra = []
            for file_scheme, entry in record_list:
                if file_scheme not in ("purelib", "platlib"):
                    continue
                rel = entry.path
                foreign = candidate_suffix(rel.rsplit("/", 1)[-1], self.twin_map)
                if foreign is None:
                    continue
                site = _staged(self.scheme_dict[file_scheme], self.destdir)
                c = Candidate(site, rel, self.distribution, self.version, None, self.twin_map[foreign], foreign)
                d = decide(c, self.facts, self.host, set())
                if d.action == "refuse":
                    self.problems.append((c.path, d.reason))
                    continue
                if d.action != "create":
                    continue  # the name was already there: not ours to record (or delete)
                try:
                    os.symlink(c.link_target, c.alias_path)
                except FileExistsError:
                    self.problems.append((c.path, "the alias name appeared meanwhile; left alone"))
                    continue
                self.created.append(c.alias_path)
                self.aliases.append(Alias(c.distribution, c.version, c.alias_path, c.path, "created"))
                extra.append((file_scheme, RecordEntry(c.alias_rel, None, None)))
            super().finalize_installation(scheme, record_file_path, record_list + extra)

    return AliasingDestination


def install_wheels(
    wheels: list[str],
    *,
    destdir: Optional[str] = None,
    prefix: Optional[str] = None,
    bytecode_levels: Iterable[int] = (0, 1),
    python: Optional[str] = None,
    plugins: Optional[list[object]] = None,
) -> Report:
    """Install ``wheels`` like ``python -m installer``, aliases included."""
    import installer
    from installer.sources import WheelFile
    from installer.utils import get_launcher_kind

    facts = gather_facts(python)
    host = get_plugin_host(plugins)
    twin_map = build_twin_map(facts, host)
    report = Report("install", facts)
    for wheel in wheels:
        _check_wheel(wheel)
        _check_platform(wheel, facts)
    destination_class = _destination_class()
    for wheel in wheels:
        try:
            source_cm = WheelFile.open(Path(wheel))
            source = source_cm.__enter__()
        except OSError as exc:
            raise InstallError(f"{wheel}: cannot open: {exc}") from None
        except _invalid_wheel_errors() as exc:
            raise UsageError(f"{wheel}: cannot open wheel: {exc}") from None
        try:
            scheme = _scheme(python, prefix, source.distribution)
            in_the_way = _already_installed(source.distribution, scheme, destdir)
            if in_the_way:
                raise InstallError(f"{source.distribution} is already installed at {in_the_way}; uninstall it first")
            dest = destination_class(
                scheme_dict=scheme,
                interpreter=facts.executable,
                script_kind=get_launcher_kind(),
                bytecode_optimization_levels=list(bytecode_levels),
                destdir=destdir,
            )
            dest.facts, dest.host, dest.twin_map = facts, host, twin_map
            dest.distribution, dest.version = source.distribution, source.version
            dest.created, dest.aliases, dest.problems = [], [], []
            try:
                installer.install(source, dest, {})
            except OSError as exc:
                _remove_created(dest.created)
                raise InstallError(f"{wheel}: {exc}; nothing installed") from None
            except _invalid_wheel_errors() as exc:
                _remove_created(dest.created)
                raise UsageError(f"{wheel}: invalid wheel ({type(exc).__name__}: {exc}); nothing installed") from None
            except BaseException:
                _remove_created(dest.created)
                raise
            report.aliases.extend(dest.aliases)
            report.problems.extend(Problem(p, r) for p, r in dest.problems)
            report.sites.extend(
                s
                for s in {_staged(scheme["purelib"], destdir), _staged(scheme["platlib"], destdir)}
                if s not in report.sites
            )
            report.distributions += 1
        finally:
            source_cm.__exit__(None, None, None)
    report.problems.extend(Problem(f"plugin:{n}", m) for n, m in host.failures)
    host.call("soabi_shim_report", report=report)
    return report


def _remove_created(created: list[str]) -> None:
    """Undo a failed install: only what this install created, newest first."""
    for path in reversed(created):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass


def run_install(args: argparse.Namespace) -> Report:
    levels: list[int] = [] if args.no_compile_bytecode else (args.compile_bytecode or [0, 1])
    return install_wheels(
        args.wheel, destdir=args.destdir, prefix=args.prefix, bytecode_levels=levels, python=args.python
    )
