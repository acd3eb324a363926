"""Plain value classes without :mod:`dataclasses`.

A healing start imports the whole pipeline; :mod:`dataclasses` alone pulls
in ``inspect``, ``ast``, ``dis`` and ``tokenize`` and compiles the
generated methods of every class at import.  The value classes of
soabi-shim instead write their ``__init__`` by hand (with ``__slots__``) and
take ``__repr__``, ``__eq__`` and (for frozen ones) ``__hash__`` and the
refusal to assign from these bases, driven by ``_fields``: the attributes
compared and shown, in order, as a dataclass would.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar


class Plain:
    """``__repr__`` and ``__eq__`` over ``_fields``; unhashable (mutable)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Frozen(Plain):
    """A :class:`Plain` that refuses assignment after ``__init__`` (which
    sets its attributes with ``object.__setattr__``) and is hashable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())
