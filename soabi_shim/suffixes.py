"""The suffix model: Linux extension-module file names, pure and without I/O.

An extension module's file name is ``<stem><suffix>``; CPython accepts the
suffixes in ``importlib.machinery.EXTENSION_SUFFIXES``.  On Linux a tagged
suffix is ``.<abi>-<arch>-linux-<libc>.so`` where ``<abi>`` names the
implementation, version and ABI flags:

============================================  ===================================
``.cpython-311-x86_64-linux-gnu.so``          CPython 3.11
``.cpython-313t-aarch64-linux-musl.so``       CPython 3.13, free-threaded
``.cpython-311d-x86_64-linux-gnu.so``         CPython 3.11, debug build
``.pypy310-pp73-x86_64-linux-gnu.so``         PyPy 3.10
``.graalpy250-311-native-x86_64-linux.so``    GraalPy (no libc part: no twin)
``.abi3-x86_64-linux-gnu.so``                 3.15's tagged stable ABI
``.abi3t-x86_64-linux-musl.so``               3.15's free-threaded stable ABI
============================================  ===================================

The *libc twin* of a suffix is the same suffix with only the libc part of
the triplet swapped between glibc and musl spellings; that is the only
difference soabi-shim ever aliases across.
"""

from __future__ import annotations

from ._plain import Frozen
from ._twins import LIBC_TWINS, MIPS64_TWINS, libc_twins
from .errors import SuffixError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = [
    "ARCHITECTURES",
    "ExtSuffix",
    "LIBC_TWINS",
    "MIPS64_TWINS",
    "libc_family",
    "libc_twins",
    "parse_suffix",
    "split_filename",
    "twin_suffixes",
]

#: Architectures as CPython's ``Misc/platform_triplet.c`` spells them.
ARCHITECTURES: frozenset[str] = frozenset(
    {
        "x86_64",
        "i386",
        "aarch64",
        "aarch64_ilp32",
        "aarch64_be",
        "aarch64_be_ilp32",
        "alpha",
        "arm",
        "armeb",
        "hppa",
        "ia64",
        "loongarch64",
        "m68k",
        "mips",
        "mipsel",
        "mips64",
        "mips64el",
        "mipsisa32r6",
        "mipsisa32r6el",
        "mipsisa64r6",
        "mipsisa64r6el",
        "or1k",
        "powerpc",
        "powerpc64",
        "powerpc64le",
        "riscv32",
        "riscv64",
        "s390",
        "s390x",
        "sh4",
        "sparc",
        "sparc64",
    }
)


def libc_family(libc: str) -> Optional[str]:
    """``"glibc"`` or ``"musl"`` for a triplet's libc part, else ``None``."""
    if libc.startswith("gnu"):
        return "glibc"
    if libc.startswith("musl"):
        return "musl"
    return None


# The grammar, parsed by hand (no ``re`` on a healing start's path); each
# parser below matches exactly what its regular expression (ASCII) does:
#
#   triplet   ^(?P<abi>.+?)-(?P<arch>[a-z0-9_]+)-linux(?:-(?P<libc>[a-z0-9]+))?$
#   cpython   ^cpython-(?P<major>\d)(?P<minor>\d{1,3})(?P<flags>t?d?m?)$
#   pypy      ^pypy(?P<major>\d)(?P<minor>\d{1,3})-pp(?P<pp>\d{1,4})$
#   graalpy   ^graalpy(?P<graal>\d{0,6})-(?P<major>\d)(?P<minor>\d{1,3})-native$
#   stable    ^abi3t?$
#
# ABI flags in the order CPython's configure appends them: t (free-threaded,
# 3.13+), d (debug), m (pymalloc, <= 3.7): "td", never "dt".
_CPYTHON_FLAGS = frozenset({"", "t", "d", "m", "td", "tm", "dm", "tdm"})
_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ARCH_CHARS = _LOWER_DIGITS | {"_"}


def _is_digits(s: str, least: int, most: int) -> bool:
    r"""``\d{least,most}`` (ASCII digits), the whole of ``s``."""
    return least <= len(s) <= most and (not s or (s.isascii() and s.isdigit()))


def _split_triplet(body: str) -> Optional[tuple[str, str, Optional[str]]]:
    """(abi, arch, libc) of ``<abi>-<arch>-linux[-<libc>]``, or None."""
    # abi is the shortest non-empty prefix (lazy ``.+?``, no newline in it)
    # such that the rest is ``-<arch>-linux[-<libc>]``.
    i = body.find("-", 1)
    while i != -1:
        if "\n" in body[:i]:
            return None
        parts = body[i + 1 :].split("-")
        if (
            2 <= len(parts) <= 3
            and parts[0]
            and parts[1] == "linux"
            and _ARCH_CHARS.issuperset(parts[0])
            and (len(parts) == 2 or (parts[2] and _LOWER_DIGITS.issuperset(parts[2])))
        ):
            return body[:i], parts[0], parts[2] if len(parts) == 3 else None
        i = body.find("-", i + 1)
    return None


class ExtSuffix(Frozen):
    """One tagged Linux extension suffix, e.g. ``.cpython-311-x86_64-linux-musl.so``.

    ``abi`` is everything before the triplet (``cpython-311``, ``abi3t``,
    ``pypy310-pp73``); ``implementation``, ``version`` and ``flags`` are read
    from it where the spelling is known.  ``libc`` is ``None`` for triplets
    without a libc part (GraalPy's ``x86_64-linux``).
    """

    _fields = ("abi", "arch", "libc", "implementation", "version", "flags")
    __slots__ = _fields
    abi: str
    arch: str
    libc: Optional[str]
    implementation: str
    version: Optional[tuple[int, int]]
    flags: str

    def __init__(
        self,
        abi: str,
        arch: str,
        libc: Optional[str],
        implementation: str,
        version: Optional[tuple[int, int]],
        flags: str,
    ) -> None:
        put = object.__setattr__
        put(self, "abi", abi)
        put(self, "arch", arch)
        put(self, "libc", libc)
        put(self, "implementation", implementation)
        put(self, "version", version)
        put(self, "flags", flags)

    def __str__(self) -> str:
        triplet = f"{self.arch}-linux" + (f"-{self.libc}" if self.libc else "")
        return f".{self.abi}-{triplet}.so"

    @property
    def stable_abi(self) -> bool:
        """True for 3.15's ``.abi3-<triplet>.so`` / ``.abi3t-<triplet>.so``."""
        return self.implementation == "stable"

    def with_libc(self, libc: str) -> ExtSuffix:
        """The same suffix with another libc part."""
        return ExtSuffix(self.abi, self.arch, libc, self.implementation, self.version, self.flags)


def _read_abi(abi: str) -> tuple[str, Optional[tuple[int, int]], str]:
    if abi.startswith("cpython-"):
        rest = abi[8:]
        n = 0
        while n < len(rest) and rest[n] in "0123456789":
            n += 1
        if 2 <= n <= 4 and rest[n:] in _CPYTHON_FLAGS:
            return "cpython", (int(rest[0]), int(rest[1:n])), rest[n:]
    elif abi.startswith("pypy"):
        version, sep, pp = abi[4:].partition("-pp")
        if sep and _is_digits(version, 2, 4) and _is_digits(pp, 1, 4):
            return "pypy", (int(version[0]), int(version[1:])), ""
    elif abi.startswith("graalpy"):
        parts = abi[7:].split("-")
        if len(parts) == 3 and _is_digits(parts[0], 0, 6) and _is_digits(parts[1], 2, 4) and parts[2] == "native":
            return "graalpy", (int(parts[1][0]), int(parts[1][1:])), ""
    elif abi in ("abi3", "abi3t"):
        return "stable", None, "t" if abi.endswith("t") else ""
    raise SuffixError(f"unknown implementation tag {abi!r}")


def parse_suffix(suffix: str) -> ExtSuffix:
    """Parse a tagged Linux extension suffix (leading dot included).

    Raises :class:`~soabi_shim.errors.SuffixError` for anything else,
    including untagged ``.so`` and ``.abi3.so``, which never need an alias.
    """
    if not isinstance(suffix, str):
        raise SuffixError(f"suffix must be a string, not {type(suffix).__name__}")
    if not (suffix.startswith(".") and suffix.endswith(".so")) or len(suffix) < 5:
        raise SuffixError(f"not a tagged extension suffix: {suffix!r}")
    body = suffix[1:-3]
    parts = _split_triplet(body)
    if parts is None or parts[1] not in ARCHITECTURES:
        raise SuffixError(f"no Linux platform triplet in {suffix!r}")
    abi, arch, libc = parts
    implementation, version, flags = _read_abi(abi)
    return ExtSuffix(abi, arch, libc, implementation, version, flags)


def twin_suffixes(suffix: ExtSuffix) -> tuple[ExtSuffix, ...]:
    """The libc twins of ``suffix``: identical but for the libc part."""
    if suffix.libc is None:
        return ()
    return tuple(suffix.with_libc(other) for other in libc_twins(suffix.arch, suffix.libc))


def split_filename(name: str) -> tuple[str, ExtSuffix]:
    """Split ``stem.cpython-311-x86_64-linux-gnu.so`` into stem and suffix.

    The stem is the module name (``PyInit_<stem>`` is the init symbol), so it
    must be a non-empty identifier.
    """
    stem, dot, rest = name.partition(".")
    if not dot or not stem.isidentifier():
        raise SuffixError(f"not an extension module file name: {name!r}")
    return stem, parse_suffix("." + rest)
