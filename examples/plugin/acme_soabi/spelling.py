"""ACME Linux's own SOABI spelling.

Years ago ACME patched its CPython to call the musl platform
``x86_64-linux-muslacme``, and extensions built then are still installed.
Today's interpreter says ``x86_64-linux-musl``: this plugin tells soabi-shim
that a ``-muslacme`` file may be aliased to the interpreter's ``-musl`` name.
The built-in twins (``-gnu``) still apply, and every safety check still runs.
"""

from __future__ import annotations

from soabi_shim import InterpreterFacts, hookimpl
from soabi_shim.suffixes import ExtSuffix

#: The interpreter's libc spelling -> the spelling ACME's old builds used.
LEGACY_LIBC = {"musl": "muslacme"}


@hookimpl
def soabi_shim_twin_suffixes(accepted: ExtSuffix, facts: InterpreterFacts) -> list[str]:
    """``.cpython-312-x86_64-linux-musl.so`` -> ``[".cpython-312-x86_64-linux-muslacme.so"]``."""
    legacy = LEGACY_LIBC.get(accepted.libc or "")
    return [str(accepted.with_libc(legacy))] if legacy else []
