"""The libc twin table, with no imports: shared by the suffix model and the
start-up hook (which must stay cheap to import)."""

_MIPS64 = frozenset({"mips64", "mips64el", "mipsisa64r6", "mipsisa64r6el"})

#: glibc spelling -> musl spellings, for every architecture but 64-bit MIPS.
LIBC_TWINS: "dict[str, tuple[str, ...]]" = {
    "gnu": ("musl",),
    "gnueabi": ("musleabi",),
    "gnueabihf": ("musleabihf",),
    "gnux32": ("muslx32",),
    "gnuspe": ("muslspe",),
    "gnuf32": ("muslf32",),
    "gnusf": ("muslsf",),
    "gnuabin32": ("musln32",),
    "gnuabin32sf": ("musln32sf",),
}

#: On 64-bit MIPS (n64) CPython 3.11/3.12 spell musl ``muslabi64`` and 3.13+
#: spell it ``musl``; glibc is ``gnuabi64`` throughout.
MIPS64_TWINS: "dict[str, tuple[str, ...]]" = {
    "gnuabi64": ("musl", "muslabi64"),
    "gnuabi64sf": ("muslsf",),
    "gnuabin32": ("musln32",),
    "gnuabin32sf": ("musln32sf",),
}


def _invert(table: "dict[str, tuple[str, ...]]") -> "dict[str, tuple[str, ...]]":
    inverse: dict[str, list[str]] = {}
    for gnu, musls in table.items():
        for musl in musls:
            inverse.setdefault(musl, []).append(gnu)
    return {musl: tuple(gnus) for musl, gnus in inverse.items()}


_TWINS = {**LIBC_TWINS, **_invert(LIBC_TWINS)}
_MIPS64_ALL = {**MIPS64_TWINS, **_invert(MIPS64_TWINS)}


def libc_twins(arch: str, libc: str) -> "tuple[str, ...]":
    """The other libc's spellings of ``libc`` on ``arch`` (empty if none)."""
    table = _MIPS64_ALL if arch in _MIPS64 else _TWINS
    return table.get(libc, ())


def twin_suffix_strings(suffix: str) -> "list[str]":
    """Libc twins of a suffix string, by plain string work (no parsing).

    ``.cpython-311-x86_64-linux-musl.so`` -> ``[".cpython-311-x86_64-linux-gnu.so"]``.
    Only ever given the interpreter's own ``_imp.extension_suffixes()``; on
    every well-formed suffix it agrees with
    :func:`soabi_shim.suffixes.twin_suffixes` (which takes and returns
    parsed :class:`~soabi_shim.suffixes.ExtSuffix` values; tested).  Suffixes with no
    ``-linux-<libc>`` part give ``[]``.
    """
    if not (suffix.startswith(".") and suffix.endswith(".so")):
        return []
    body = suffix[1:-3]
    cut = body.rfind("-linux-")
    if cut < 0:
        return []
    arch = body[:cut].rpartition("-")[2]
    head = body[: cut + 7]
    return ["." + head + twin + ".so" for twin in libc_twins(arch, body[cut + 7 :])]
