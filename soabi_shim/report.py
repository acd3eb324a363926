"""The report every run produces, and its stable JSON schema.

``{"interpreter": {...}, "aliases": [{"distribution", "version", "alias",
"target", "action"}], "problems": [{"path", "reason"}]}`` where ``action``
is ``created``, ``present``, ``would-create``, ``removed`` or
``would-remove``.  Paths are absolute.
"""

from __future__ import annotations

from ._plain import Frozen, Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, Optional

    from .facts import InterpreterFacts

    #: What happened to an alias (the ``action`` of the JSON schema).
    AliasAction = Literal["created", "present", "would-create", "removed", "would-remove"]
else:
    AliasAction = str  # no typing import at run time (start-up)

__all__ = ["ACTIONS", "Alias", "AliasAction", "Problem", "Report", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
ACTIONS: tuple[AliasAction, ...] = ("created", "present", "would-create", "removed", "would-remove")


class Alias(Frozen):
    """One alias: ``alias`` is a symlink (to be) pointing at ``target``."""

    _fields = ("distribution", "version", "alias", "target", "action")
    __slots__ = _fields
    distribution: Optional[str]  # None for files no RECORD lists
    version: Optional[str]
    alias: str
    target: str
    action: AliasAction

    def __init__(
        self, distribution: Optional[str], version: Optional[str], alias: str, target: str, action: AliasAction
    ) -> None:
        put = object.__setattr__
        put(self, "distribution", distribution)
        put(self, "version", version)
        put(self, "alias", alias)
        put(self, "target", target)
        put(self, "action", action)

    def to_json(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "version": self.version,
            "alias": self.alias,
            "target": self.target,
            "action": self.action,
        }


class Problem(Frozen):
    """Something that could not be done, with the reason."""

    _fields = ("path", "reason")
    __slots__ = _fields
    path: str
    reason: str

    def __init__(self, path: str, reason: str) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "reason", reason)

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class Report(Plain):
    """The outcome of one run of the pipeline."""

    _fields = ("command", "interpreter", "sites", "aliases", "problems", "distributions")
    __slots__ = _fields
    command: str
    interpreter: InterpreterFacts
    sites: list[str]
    aliases: list[Alias]
    problems: list[Problem]
    distributions: int

    def __init__(
        self,
        command: str,
        interpreter: InterpreterFacts,
        sites: Optional[list[str]] = None,
        aliases: Optional[list[Alias]] = None,
        problems: Optional[list[Problem]] = None,
        distributions: int = 0,
    ) -> None:
        self.command = command
        self.interpreter = interpreter
        self.sites = [] if sites is None else sites
        self.aliases = [] if aliases is None else aliases
        self.problems = [] if problems is None else problems
        self.distributions = distributions

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
