"""The report every run produces, and its stable JSON schema.

``{"interpreter": {...}, "aliases": [{"distribution", "version", "alias",
"target", "action"}], "problems": [{"path", "reason"}]}`` where ``action``
is ``created``, ``present``, ``would-create``, ``removed`` or
``would-remove``.  Paths are absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from .facts import InterpreterFacts

__all__ = ["ACTIONS", "Alias", "AliasAction", "Problem", "Report", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
#: What happened to an alias (the ``action`` of the JSON schema).
AliasAction = Literal["created", "present", "would-create", "removed", "would-remove"]
ACTIONS: tuple[AliasAction, ...] = ("created", "present", "would-create", "removed", "would-remove")


@dataclass(frozen=True)
class Alias:
    """One alias: ``alias`` is a symlink (to be) pointing at ``target``."""

    distribution: Optional[str]  # None for files no RECORD lists
    version: Optional[str]
    alias: str
    target: str
    action: AliasAction

    def to_json(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "version": self.version,
            "alias": self.alias,
            "target": self.target,
            "action": self.action,
        }


@dataclass(frozen=True)
class Problem:
    """Something that could not be done, with the reason."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class Report:
    """The outcome of one run of the pipeline."""

    command: str
    interpreter: InterpreterFacts
    sites: list[str] = field(default_factory=list)
    aliases: list[Alias] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    distributions: int = 0

    @property
    def pending(self) -> list[Alias]:
        """Aliases still to be made (or removed, for a dry run)."""
        return [a for a in self.aliases if a.action.startswith("would-")]

    @property
    def ok(self) -> bool:
        """True when nothing needs healing and nothing failed (exit 0)."""
        return not self.problems and not self.pending

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "command": self.command,
            "interpreter": self.interpreter.to_json(),
            "sites": list(self.sites),
            "distributions": self.distributions,
            "aliases": [a.to_json() for a in self.aliases],
            "problems": [p.to_json() for p in self.problems],
        }
