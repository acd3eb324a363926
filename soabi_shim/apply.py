"""Apply a plan: record, then link.  And undo: unlink, then unrecord.

Order matters for a kill at any instant:

* heal appends the alias's ``path,,`` row to RECORD *before* creating the
  symlink, so every alias soabi-shim makes is recorded from the moment it
  exists; a kill in between leaves a row for a missing file, which the next
  heal completes (uninstallers skip missing files);
* undo removes the symlink *before* its row, for the same reason.

Symlinks are created with a single ``symlink(2)``, which fails if anything
holds the name: nothing is ever overwritten.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional

from .errors import RecordError, SuffixError
from .plan import Decision, Plan
from .record import append_rows, remove_rows
from .report import Alias
from .scan import LINK_PREFIX, SiteScan, escapes, link_kind, walk_extensions
from .suffixes import split_filename

__all__ = ["apply_plan", "undo_site"]


def _alias(d: Decision, action: str) -> Alias:
    c = d.candidate
    return Alias(c.distribution, c.version, c.alias_path, c.path, action)


def apply_plan(plan: Plan, *, dry_run: bool) -> tuple[list[Alias], list[tuple[str, str]]]:
    """Carry out ``plan``; return the aliases and the problems."""
    aliases: list[Alias] = []
    problems: list[tuple[str, str]] = []
    to_create: dict[Optional[str], list[Decision]] = defaultdict(list)
    for d in plan.decisions:
        if d.action == "present":
            aliases.append(_alias(d, "present"))
        elif d.action == "refuse":
            problems.append((d.candidate.path, d.reason))
        elif d.action in ("create", "record"):
            if dry_run:
                aliases.append(_alias(d, "would-create"))
            else:
                to_create[d.candidate.record].append(d)
    unwritable = {s for s in {d.candidate.site for ds in to_create.values() for d in ds} if not os.access(s, os.W_OK)}
    for site in sorted(unwritable):
        count = sum(1 for ds in to_create.values() for d in ds if d.candidate.site == site)
        problems.append((site, f"{_why_unwritable(site)}: {count} alias(es) not made"))
    for record, decisions in to_create.items():
        decisions = [d for d in decisions if d.candidate.site not in unwritable]
        if not decisions:
            continue
        if record is not None:
            try:
                append_rows(record, [d.candidate.alias_rel for d in decisions if not d.recorded])
            except RecordError as exc:
                problems.extend((d.candidate.path, str(exc)) for d in decisions)
                continue
        for d in decisions:
            outcome = _link(d) if d.action == "create" else None
            if outcome is None:
                aliases.append(_alias(d, "created"))
            elif outcome == "present":
                aliases.append(_alias(d, "present"))
            else:
                problems.append((d.candidate.path, outcome))
                if record is not None and not d.recorded:
                    _forget(record, d.candidate.alias_rel, d.candidate.name)
    return aliases, problems


def _why_unwritable(site: str) -> str:
    try:
        if os.statvfs(site).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return f"not writable by this user (uid {os.geteuid()})"


def _link(d: Decision) -> Optional[str]:
    """Create the symlink; None on success, "present" or a reason otherwise."""
    c = d.candidate
    try:
        os.symlink(c.link_target, c.alias_path)
    except FileExistsError:
        try:
            if link_kind(os.readlink(c.alias_path), c.name) is not None:
                return "present"  # another process made it meanwhile
        except OSError:
            pass
        return "the alias name was taken meanwhile; left alone"
    except OSError as exc:
        return f"cannot create the alias: {exc.strerror or exc}"
    return None


def _forget(record: str, alias_rel: str, target_name: str) -> None:
    """Drop a row we just added when its link could not be made by us."""
    alias_path = os.path.join(os.path.dirname(os.path.dirname(record)), *alias_rel.split("/"))
    try:
        if os.path.islink(alias_path) and link_kind(os.readlink(alias_path), target_name) is not None:
            return
        remove_rows(record, [alias_rel])
    except (OSError, RecordError):
        pass


def is_alias_pair(alias_name: str, target: str, twin_map: dict[str, str]) -> bool:
    """True if ``alias_name -> target`` is the shape of a soabi-shim alias.

    ``target`` is ``./<twin>`` (see :data:`~soabi_shim.scan.LINK_PREFIX`):
    same directory, same stem, and the twin's suffix maps to the alias's
    suffix in ``twin_map``.
    """
    if not target.startswith(LINK_PREFIX):
        return False
    twin = target[len(LINK_PREFIX) :]
    if "/" in twin:
        return False
    try:
        stem_a, suffix_a = split_filename(alias_name)
        stem_t, suffix_t = split_filename(twin)
    except SuffixError:
        return False
    return stem_a == stem_t and twin_map.get(str(suffix_t)) == str(suffix_a)


def _is_our_link(path: str, twin_map: dict[str, str]) -> bool:
    try:
        return is_alias_pair(os.path.basename(path), os.readlink(path), twin_map)
    except OSError:
        return False


def _unrecorded_alias(rel: str, rows: set[str], twin_map: dict[str, str]) -> bool:
    """A ``path,,`` row for a missing alias whose twin is listed beside it
    (a heal killed between writing the row and making the link)."""
    head, _, name = rel.rpartition("/")
    prefix = head + "/" if head else ""
    return any(
        is_alias_pair(name, LINK_PREFIX + other[len(prefix) :], twin_map)
        for other in rows
        if other.startswith(prefix) and "/" not in other[len(prefix) :]
    )


def undo_site(
    scan: SiteScan, twin_map: dict[str, str], *, dry_run: bool, include_unowned: bool
) -> tuple[list[Alias], list[tuple[str, str]]]:
    """Remove the aliases soabi-shim made in one site directory, and their rows.

    Ours are symlinks to ``./<twin>`` of alias shape; dangling ones and rows
    left by a kill are pruned too.  Regular files, hand-made links (to
    ``<twin>``) and links of any other shape are never touched.
    """
    aliases: list[Alias] = []
    problems: list[tuple[str, str]] = []
    action = "would-remove" if dry_run else "removed"
    owned: set[str] = set()

    def remove(path: str, dist: Optional[str], version: Optional[str]) -> bool:
        target = os.path.join(os.path.dirname(path), os.readlink(path)[len(LINK_PREFIX) :])
        if not dry_run:
            try:
                os.unlink(path)
            except OSError as exc:
                problems.append((path, f"cannot remove the alias: {exc.strerror or exc}"))
                return False
        aliases.append(Alias(dist, version, path, target, action))
        return True

    candidates_by_record: dict[str, list[str]] = defaultdict(list)
    for c in scan.candidates:
        if c.record is not None:
            candidates_by_record[c.record].append(c.alias_rel)
    for dist in scan.distributions:
        rows = {r[0] for r in dist.rows}
        owned.update(rows)
        doomed: list[str] = []
        for rel, digest, size in dist.rows:
            if digest or size or escapes(rel):
                continue
            path = os.path.join(scan.site, *rel.split("/"))
            if os.path.islink(path):
                if _is_our_link(path, twin_map) and remove(path, dist.name, dist.version):
                    doomed.append(rel)
            elif not os.path.lexists(path) and _unrecorded_alias(rel, rows, twin_map):
                doomed.append(rel)
        for rel in candidates_by_record.get(dist.record, ()):
            # Our alias whose row an installer's RECORD rewrite dropped.
            path = os.path.join(scan.site, *rel.split("/"))
            if rel not in rows and os.path.islink(path) and _is_our_link(path, twin_map):
                remove(path, dist.name, dist.version)
        if doomed and not dry_run:
            try:
                remove_rows(dist.record, doomed)
            except RecordError as exc:
                problems.append((dist.record, str(exc)))
    if include_unowned:
        for rel in walk_extensions(scan.site):
            path = os.path.join(scan.site, *rel.split("/"))
            if rel not in owned and os.path.islink(path) and _is_our_link(path, twin_map):
                remove(path, None, None)
    return aliases, problems
