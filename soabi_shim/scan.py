"""Scan a site directory: its distributions and the candidates in their RECORDs.

A *candidate* is a file whose suffix is a twin (per the plugins) of one of
the interpreter's accepted suffixes, and which the interpreter therefore
cannot load by its name.  The scan does no ELF or safety check; that is the
plan's job.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional

from .errors import RecordError
from .record import TMP_PREFIX, clean_stale_temps, read_record

__all__ = [
    "LINK_PREFIX",
    "Candidate",
    "Distribution",
    "SiteScan",
    "candidate_suffix",
    "escapes",
    "link_kind",
    "scan_site",
    "walk_extensions",
]


@dataclass(frozen=True)
class Candidate:
    """A file named for the other libc, and the alias it needs."""

    site: str  # the site directory being healed
    rel: str  # path relative to ``site``, "/"-separated (as in RECORD)
    distribution: Optional[str]
    version: Optional[str]
    record: Optional[str]  # the RECORD that lists it, if any
    alias_suffix: str  # the interpreter's accepted suffix
    foreign_suffix: str

    @property
    def path(self) -> str:
        return os.path.join(self.site, *self.rel.split("/"))

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def alias_name(self) -> str:
        return self.name[: len(self.name) - len(self.foreign_suffix)] + self.alias_suffix

    @property
    def alias_rel(self) -> str:
        head = self.rel.rsplit("/", 1)[0] + "/" if "/" in self.rel else ""
        return head + self.alias_name

    @property
    def alias_path(self) -> str:
        return os.path.join(os.path.dirname(self.path), self.alias_name)

    @property
    def link_target(self) -> str:
        """What soabi-shim's alias points to: see :func:`link_kind`."""
        return LINK_PREFIX + self.name


#: soabi-shim's aliases point to ``./<twin>``, a hand-made ``ln -s`` to
#: ``<twin>``: both relative, same directory, equally valid, but only ours
#: are ever recorded or removed.  The mark survives an installer rewriting
#: RECORD under a concurrent heal (pip extracts the wheel's RECORD first and
#: replaces it at the end), so a later heal can record the alias again.
LINK_PREFIX = "./"


def link_kind(target: str, name: str) -> Optional[str]:
    """``"ours"`` if ``target`` is our link to ``name``, ``"foreign"`` for
    an equivalent link made by someone else, None for anything else."""
    if target == LINK_PREFIX + name:
        return "ours"
    if target == name:
        return "foreign"
    return None


@dataclass
class Distribution:
    name: str
    version: str
    dist_info: str
    record: str
    rows: list[tuple[str, str, str]]


@dataclass
class SiteScan:
    site: str
    distributions: list[Distribution] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def candidate_suffix(name: str, twin_map: dict[str, str]) -> Optional[str]:
    """The foreign suffix of ``name`` if it is in ``twin_map``, else None."""
    if not name.endswith(".so"):
        return None
    dot = name.find(".")
    if dot <= 0:
        return None
    suffix = name[dot:]
    if suffix in twin_map and name[:dot].isidentifier():
        return suffix
    return None


def _dist_name(dist_info: str) -> tuple[str, str]:
    base = dist_info[: -len(".dist-info")]
    name, _, version = base.partition("-")
    return name, version


def escapes(rel: str) -> bool:
    """A RECORD path that is absolute or climbs out with ``..``."""
    return rel.startswith("/") or "\\" in rel or any(part in ("..", "") for part in rel.split("/"))


def scan_site(site: str, twin_map: dict[str, str], *, include_unowned: bool = False) -> SiteScan:
    """Find the distributions of ``site`` and their candidates."""
    result = SiteScan(site)
    try:
        entries = sorted(os.listdir(site))
    except OSError as exc:
        result.problems.append((site, f"cannot list the site directory: {exc.strerror or exc}"))
        return result
    if any(e.startswith(TMP_PREFIX) for e in entries):
        clean_stale_temps(site)
    owned: set[str] = set()
    for entry in entries:
        if not entry.endswith(".dist-info"):
            continue
        record = os.path.join(site, entry, "RECORD")
        if not os.path.isfile(record):
            continue
        name, version = _dist_name(entry)
        try:
            rows = read_record(record)
        except RecordError as exc:
            result.problems.append((record, f"{exc}; distribution skipped, RECORD left untouched"))
            continue
        dist = Distribution(name, version, entry, record, rows)
        result.distributions.append(dist)
        for rel, _hash, _size in rows:
            owned.add(rel)
            foreign = candidate_suffix(rel.rsplit("/", 1)[-1], twin_map)
            if foreign is None:
                continue
            if escapes(rel):
                result.problems.append(
                    (
                        os.path.join(site, rel),
                        f"RECORD of {name} {version} names a path that leaves the site directory; refused",
                    )
                )
                continue
            result.candidates.append(Candidate(site, rel, name, version, record, twin_map[foreign], foreign))
    if include_unowned:
        for rel in walk_extensions(site):
            if rel in owned:
                continue
            foreign = candidate_suffix(rel.rsplit("/", 1)[-1], twin_map)
            if foreign is not None:
                result.candidates.append(Candidate(site, rel, None, None, None, twin_map[foreign], foreign))
    return result


def walk_extensions(site: str) -> Iterator[str]:
    """Every ``*.so`` under ``site`` as a RECORD-style relative path.

    Directory symlinks are not followed, so the walk never leaves ``site``.
    """
    for top, dirs, files in os.walk(site, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.endswith(".dist-info") and d != "__pycache__")
        rel_top = os.path.relpath(top, site)
        for name in sorted(files):
            if name.endswith(".so"):
                yield name if rel_top == "." else f"{rel_top.replace(os.sep, '/')}/{name}"
