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
import stat
from collections import defaultdict
from collections.abc import Iterable
from typing import Optional

from .errors import RecordError, SuffixError
from .plan import Decision, Plan
from .record import append_rows, remove_rows
from .report import Alias
from .scan import SiteScan, walk_extensions
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
        elif d.action == "create":
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
            outcome = _link(d)
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
        os.symlink(c.name, c.alias_path)
    except FileExistsError:
        try:
            if os.readlink(c.alias_path) == c.name:
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
        if os.path.islink(alias_path) and os.readlink(alias_path) == target_name:
            return
        remove_rows(record, [alias_rel])
    except (OSError, RecordError):
        pass


def is_alias_pair(alias_name: str, target: str, twin_map: dict[str, str]) -> bool:
    """True if ``alias_name -> target`` has the shape of a soabi-shim alias.

    Same directory (``target`` has no ``/``), same stem, and the target's
    suffix maps to the alias's suffix in ``twin_map``.
    """
    if "/" in target:
        return False
    try:
        stem_a, suffix_a = split_filename(alias_name)
        stem_t, suffix_t = split_filename(target)
    except SuffixError:
        return False
    return stem_a == stem_t and twin_map.get(str(suffix_t)) == str(suffix_a)


def undo_site(
    scan: SiteScan, twin_map: dict[str, str], *, dry_run: bool, include_unowned: bool
) -> tuple[list[Alias], list[tuple[str, str]]]:
    """Remove the aliases soabi-shim made in one site directory.

    An alias of ours is a RECORD row ``path,,`` naming a symlink whose target
    is its libc twin in the same directory.  Dangling ones are pruned too.
    Regular files and links of any other shape are never touched.
    """
    aliases: list[Alias] = []
    problems: list[tuple[str, str]] = []
    action = "would-remove" if dry_run else "removed"
    owned: set[str] = set()
    for dist in scan.distributions:
        owned.update(r[0] for r in dist.rows)
        names = {r[0] for r in dist.rows}
        doomed: list[str] = []
        for rel, digest, size in dist.rows:
            if digest or size or "/.." in "/" + rel or rel.startswith("/"):
                continue
            path = os.path.join(scan.site, *rel.split("/"))
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                # Killed between row and link: a row for an alias never made.
                head = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
                name = rel.rsplit("/", 1)[-1]
                if any(
                    is_alias_pair(name, other[len(head) :], twin_map)
                    for other in names
                    if other.startswith(head) and "/" not in other[len(head) :]
                ):
                    doomed.append(rel)
                continue
            except OSError:
                continue
            if not stat.S_ISLNK(st.st_mode):
                continue
            target = os.readlink(path)
            if not is_alias_pair(os.path.basename(path), target, twin_map):
                continue
            if not dry_run:
                try:
                    os.unlink(path)
                except OSError as exc:
                    problems.append((path, f"cannot remove the alias: {exc.strerror or exc}"))
                    continue
            doomed.append(rel)
            aliases.append(Alias(dist.name, dist.version, path, os.path.join(os.path.dirname(path), target), action))
        if doomed and not dry_run:
            try:
                remove_rows(dist.record, doomed)
            except RecordError as exc:
                problems.append((dist.record, str(exc)))
    if include_unowned:
        aliases.extend(_undo_unowned(scan.site, owned, twin_map, dry_run, problems))
    return aliases, problems


def _undo_unowned(
    site: str, owned: set[str], twin_map: dict[str, str], dry_run: bool, problems: list[tuple[str, str]]
) -> Iterable[Alias]:
    for rel in walk_extensions(site):
        if rel in owned:
            continue
        path = os.path.join(site, *rel.split("/"))
        if not os.path.islink(path):
            continue
        target = os.readlink(path)
        if not is_alias_pair(os.path.basename(path), target, twin_map):
            continue
        if not dry_run:
            try:
                os.unlink(path)
            except OSError as exc:
                problems.append((path, f"cannot remove the alias: {exc.strerror or exc}"))
                continue
        yield Alias(None, None, path, os.path.join(os.path.dirname(path), target), "would-remove" if dry_run else "removed")
