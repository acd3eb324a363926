"""Scan a site directory: its distributions and the candidates in their RECORDs.

A *candidate* is a file whose suffix is a twin (per the plugins) of one of
the interpreter's accepted suffixes, and which the interpreter therefore
cannot load by its name.  The scan does no ELF or safety check; that is the
plan's job.
"""

from __future__ import annotations

import os

from ._plain import Frozen, Plain
from .errors import OutsideError, RecordError
from .record import TMP_PREFIX, clean_stale_temps_at, load_record
from .sitefs import SiteDir, describe

# No typing or dataclasses at run time (a healing start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .record import RecordFile

__all__ = [
    "LINK_PREFIX",
    "Candidate",
    "Distribution",
    "SiteScan",
    "candidate_suffix",
    "escapes",
    "link_kind",
    "scan_site",
]


class Candidate(Frozen):
    """A file named for the other libc, and the alias it needs."""

    _fields = ("site", "rel", "distribution", "version", "record", "alias_suffix", "foreign_suffix")
    # The derived names are neither compared nor shown.
    __slots__ = (*_fields, "path", "name", "alias_name", "alias_rel", "alias_path")
    site: str  # the site directory being healed
    rel: str  # path relative to ``site``, "/"-separated (as in RECORD)
    distribution: Optional[str]
    version: Optional[str]
    record: Optional[str]  # the RECORD that lists it, if any
    alias_suffix: str  # the interpreter's accepted suffix
    foreign_suffix: str

    # Derived names, computed once (a heal asks for each several times).
    path: str  # absolute
    name: str  # its file name
    alias_name: str
    alias_rel: str
    alias_path: str

    def __init__(
        self,
        site: str,
        rel: str,
        distribution: Optional[str],
        version: Optional[str],
        record: Optional[str],
        alias_suffix: str,
        foreign_suffix: str,
    ) -> None:
        put = object.__setattr__  # frozen
        put(self, "site", site)
        put(self, "rel", rel)
        put(self, "distribution", distribution)
        put(self, "version", version)
        put(self, "record", record)
        put(self, "alias_suffix", alias_suffix)
        put(self, "foreign_suffix", foreign_suffix)
        name = rel.rpartition("/")[2]
        alias_name = name[: len(name) - len(foreign_suffix)] + alias_suffix
        alias_rel = rel[: len(rel) - len(name)] + alias_name
        # os.path.join(site, rel) for a relative rel, without its cost
        # (rel never escapes: see escapes()).
        head = site if site.endswith("/") else site + "/"
        put(self, "path", head + rel)
        put(self, "name", name)
        put(self, "alias_name", alias_name)
        put(self, "alias_rel", alias_rel)
        put(self, "alias_path", head + alias_rel)

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


class Distribution(Plain):
    _fields = ("name", "version", "dist_info", "record", "rows", "record_file")
    __slots__ = _fields
    name: str
    version: str
    dist_info: str
    record: str  # absolute path of its RECORD (for messages and Candidate.record)
    rows: list[tuple[str, str, str]]
    record_file: Optional[RecordFile]  # the RECORD as read, reused by apply

    def __init__(
        self,
        name: str,
        version: str,
        dist_info: str,
        record: str,
        rows: list[tuple[str, str, str]],
        record_file: Optional[RecordFile] = None,
    ) -> None:
        self.name = name
        self.version = version
        self.dist_info = dist_info
        self.record = record
        self.rows = rows
        self.record_file = record_file


class SiteScan(Plain):
    _fields = ("site", "distributions", "candidates", "problems", "unowned", "fs")
    __slots__ = (*_fields, "_by_record")
    site: str
    distributions: list[Distribution]
    candidates: list[Candidate]
    problems: list[tuple[str, str]]  # (path, reason)
    unowned: list[str]  # *.so no RECORD lists (include_unowned)
    fs: Optional[SiteDir]  # the open site directory; None if it could not be opened
    _by_record: Optional[dict[str, Distribution]]

    def __init__(
        self,
        site: str,
        distributions: Optional[list[Distribution]] = None,
        candidates: Optional[list[Candidate]] = None,
        problems: Optional[list[tuple[str, str]]] = None,
        unowned: Optional[list[str]] = None,
        fs: Optional[SiteDir] = None,
    ) -> None:
        self.site = site
        self.distributions = [] if distributions is None else distributions
        self.candidates = [] if candidates is None else candidates
        self.problems = [] if problems is None else problems
        self.unowned = [] if unowned is None else unowned
        self.fs = fs
        self._by_record = None

    def close(self) -> None:
        if self.fs is not None:
            self.fs.close()

    def distribution_of(self, record: Optional[str]) -> Optional[Distribution]:
        """The distribution whose RECORD is ``record`` (an absolute path)."""
        if self._by_record is None:
            self._by_record = {d.record: d for d in self.distributions}
        return self._by_record.get(record or "")


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
    """Find the distributions of ``site`` and their candidates.

    The site directory is opened once (:class:`~soabi_shim.sitefs.SiteDir`,
    kept in :attr:`SiteScan.fs` for the plan and apply steps; the caller
    closes it with :meth:`SiteScan.close`) and each RECORD is read once.
    """
    result = SiteScan(site)
    try:
        fs = result.fs = SiteDir(site)
        entries = fs.listdir()
    except OSError as exc:
        result.problems.append((site, f"cannot list the site directory: {exc.strerror or exc}"))
        return result
    if any(e.startswith(TMP_PREFIX) for e in entries):
        clean_stale_temps_at(fs.fd, entries)
    owned: set[str] = set()
    for entry in entries:
        if entry.endswith(".dist-info"):
            dist = _read_distribution(fs, entry, result.problems)
            if dist is not None:
                result.distributions.append(dist)
                _candidates(site, dist, twin_map, owned, result)
    if include_unowned:
        try:
            result.unowned = [rel for rel in fs.walk(".so", (".dist-info", "__pycache__")) if rel not in owned]
        except OSError as exc:
            result.problems.append((site, f"cannot walk the site directory: {exc.strerror or exc}"))
        for rel in result.unowned:
            foreign = candidate_suffix(rel.rsplit("/", 1)[-1], twin_map)
            if foreign is not None:
                result.candidates.append(Candidate(site, rel, None, None, None, twin_map[foreign], foreign))
    return result


def _read_distribution(fs: SiteDir, entry: str, problems: list[tuple[str, str]]) -> Optional[Distribution]:
    rel = entry + "/RECORD"
    record = fs.abspath(rel)
    try:
        rf = load_record(fs, rel, missing_ok=True)
    except OutsideError as exc:
        problems.append((fs.abspath(entry), f"{describe(exc)}; distribution skipped"))
        return None
    except RecordError as exc:
        problems.append((record, f"{exc}; distribution skipped, RECORD left untouched"))
        return None
    if rf is None:
        return None  # not an installed distribution (or gone meanwhile)
    name, version = _dist_name(entry)
    return Distribution(name, version, entry, record, rf.rows, rf)


def _candidates(site: str, dist: Distribution, twin_map: dict[str, str], owned: set[str], result: SiteScan) -> None:
    for rel, _hash, _size in dist.rows:
        owned.add(rel)
        if not rel.endswith(".so"):  # most rows: no call
            continue
        foreign = candidate_suffix(rel.rpartition("/")[2], twin_map)
        if foreign is None:
            continue
        if escapes(rel):
            result.problems.append(
                (
                    os.path.join(site, rel),
                    f"RECORD of {dist.name} {dist.version} names a path that leaves the site directory; refused",
                )
            )
            continue
        result.candidates.append(Candidate(site, rel, dist.name, dist.version, dist.record, twin_map[foreign], foreign))
