"""The suffix model (``soabi_shim.suffixes``) and the string-only twin table
(``soabi_shim._twins``), table-driven over every architecture.

The expected glibc <-> musl pairs below are written out independently of
``soabi_shim._twins`` (from CPython's ``Misc/platform_triplet.c`` and
3.11/3.12's ``configure.ac``) so that a typo in the package's table fails here.
"""

from __future__ import annotations

import itertools

import pytest

from soabi_shim._twins import twin_suffix_strings
from soabi_shim.errors import SoabiShimError, SuffixError
from soabi_shim.suffixes import (
    ARCHITECTURES,
    ExtSuffix,
    libc_family,
    libc_twins,
    parse_suffix,
    split_filename,
    twin_suffixes,
)

# --------------------------------------------------------------------------
# Expected data, independent of the package
# --------------------------------------------------------------------------

MIPS64 = ("mips64", "mips64el", "mipsisa64r6", "mipsisa64r6el")

#: Every architecture CPython's Misc/platform_triplet.c names for Linux.
EXPECTED_ARCHITECTURES = {
    "x86_64", "i386", "aarch64", "aarch64_ilp32", "aarch64_be", "aarch64_be_ilp32",
    "alpha", "arm", "armeb", "hppa", "ia64", "loongarch64", "m68k",
    "mips", "mipsel", "mips64", "mips64el", "mipsisa32r6", "mipsisa32r6el",
    "mipsisa64r6", "mipsisa64r6el", "or1k", "powerpc", "powerpc64", "powerpc64le",
    "riscv32", "riscv64", "s390", "s390x", "sh4", "sparc", "sparc64",
}  # fmt: skip

#: glibc spelling -> musl spelling on every architecture but 64-bit MIPS.
GENERIC_PAIRS = [
    ("gnu", "musl"),
    ("gnueabi", "musleabi"),
    ("gnueabihf", "musleabihf"),
    ("gnux32", "muslx32"),
    ("gnuspe", "muslspe"),
    ("gnuf32", "muslf32"),
    ("gnusf", "muslsf"),
    ("gnuabin32", "musln32"),
]

#: On 64-bit MIPS: n64 glibc is ``gnuabi64``; musl is ``muslabi64`` for
#: CPython 3.11/3.12 and ``musl`` for 3.13+.  n32 is gnuabin32 <-> musln32.
MIPS64_EXPECTED = {
    "gnuabi64": {"musl", "muslabi64"},
    "musl": {"gnuabi64"},
    "muslabi64": {"gnuabi64"},
    "gnuabin32": {"musln32"},
    "musln32": {"gnuabin32"},
}

GLIBC_SPELLINGS = [g for g, _ in GENERIC_PAIRS] + ["gnuabi64", "gnuabi64sf", "gnuabin32sf"]
MUSL_SPELLINGS = [m for _, m in GENERIC_PAIRS] + ["muslabi64", "musln32sf"]
OTHER_SPELLINGS = ["android", "uclibc", "gnuabi", "gnux", "muslx", "glibc", "gnu2"]
ALL_LIBC = GLIBC_SPELLINGS + MUSL_SPELLINGS + OTHER_SPELLINGS

VERSIONS = [(3, minor) for minor in range(9, 16)]

#: (spelling in the file name, expected ``flags``).  CPython appends ``t``
#: (--disable-gil) before ``d`` (--with-pydebug) in configure, so a
#: free-threaded debug build's SOABI is ``cpython-313td``; the model keeps
#: flags in sorted order.
CPYTHON_FLAGS = [("", ""), ("d", "d"), ("t", "t"), ("td", "td")]


def abi_cases() -> list[tuple[str, str, tuple[int, int] | None, str]]:
    """(abi, implementation, version, flags) for every implementation tag."""
    cases: list[tuple[str, str, tuple[int, int] | None, str]] = []
    for major, minor in VERSIONS:
        for spelled, flags in CPYTHON_FLAGS:
            cases.append((f"cpython-{major}{minor}{spelled}", "cpython", (major, minor), flags))
        cases.append((f"pypy{major}{minor}-pp73", "pypy", (major, minor), ""))
        cases.append((f"graalpy250-{major}{minor}-native", "graalpy", (major, minor), ""))
        cases.append((f"graalpy-{major}{minor}-native", "graalpy", (major, minor), ""))
    cases.append(("abi3", "stable", None, ""))
    cases.append(("abi3t", "stable", None, "t"))
    return cases


ABI_CASES = abi_cases()


def expected_twins(arch: str, libc: str) -> set[str] | None:
    """The musl/glibc twins we require, or None where we require nothing."""
    if arch in MIPS64:
        return MIPS64_EXPECTED.get(libc)
    for gnu, musl in GENERIC_PAIRS:
        if libc == gnu:
            return {musl}
        if libc == musl:
            return {gnu}
    if libc in OTHER_SPELLINGS:
        return set()
    return None


def _check_twin_invariants(original: ExtSuffix, problems: list[str]) -> None:
    text = str(original)
    twins = twin_suffixes(original)
    for twin in twins:
        # Only the libc part changes.
        for field in ("abi", "arch", "implementation", "version", "flags"):
            if getattr(twin, field) != getattr(original, field):
                problems.append(f"{text}: twin {twin} changes {field}")
        if twin.libc == original.libc or twin.libc is None:
            problems.append(f"{text}: twin {twin} has libc {twin.libc!r}")
        if {libc_family(twin.libc or ""), libc_family(original.libc or "")} != {"glibc", "musl"}:
            problems.append(f"{text}: twin {twin} is not of the other libc family")
        # A twin is itself a well-formed suffix ...
        try:
            reparsed = parse_suffix(str(twin))
        except SuffixError as exc:
            problems.append(f"{text}: twin {twin} does not parse: {exc}")
            continue
        if reparsed != twin:
            problems.append(f"{text}: twin {twin} reparses as {reparsed!r}")
        # ... whose twins lead back.
        if original not in twin_suffixes(twin):
            problems.append(f"{text}: twin of twin {twin} lost the original")
    if len(set(twins)) != len(twins):
        problems.append(f"{text}: duplicate twins {twins}")
    strings = [str(t) for t in twins]
    if twin_suffix_strings(text) != strings:
        problems.append(f"{text}: twin_suffix_strings {twin_suffix_strings(text)} != twin_suffixes {strings}")


# --------------------------------------------------------------------------
# The architecture list
# --------------------------------------------------------------------------


def test_architectures_are_cpythons_spelling() -> None:
    assert set(ARCHITECTURES) == EXPECTED_ARCHITECTURES


@pytest.mark.parametrize(
    "wrong",
    ["i686", "i586", "x86", "amd64", "x86-64", "armv7l", "armv7", "armv6l", "armhf", "arm64",
     "ppc64le", "ppc64", "ppc", "X86_64", "mips64r6", "riscv", "loong64", "s390X"],
)  # fmt: skip
def test_wheel_tag_architectures_are_rejected(wrong: str) -> None:
    for libc in ("gnu", "musl", "gnueabihf", "musleabihf"):
        with pytest.raises(SuffixError):
            parse_suffix(f".cpython-311-{wrong}-linux-{libc}.so")
        with pytest.raises(SuffixError):
            split_filename(f"mod.cpython-311-{wrong}-linux-{libc}.so")


# --------------------------------------------------------------------------
# Exhaustive grid: architecture x libc x implementation x version x flags
# --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(EXPECTED_ARCHITECTURES))
def test_grid_parse_round_trip_and_fields(arch: str) -> None:
    problems: list[str] = []
    for abi, implementation, version, flags in ABI_CASES:
        for libc in [*ALL_LIBC, None]:
            text = f".{abi}-{arch}-linux" + (f"-{libc}" if libc else "") + ".so"
            try:
                parsed = parse_suffix(text)
            except SuffixError as exc:
                problems.append(f"{text}: rejected: {exc}")
                continue
            if str(parsed) != text:
                problems.append(f"{text}: str() gives {parsed}")
            got = (parsed.abi, parsed.arch, parsed.libc, parsed.implementation, parsed.version, parsed.flags)
            want = (abi, arch, libc, implementation, version, flags)
            if got != want:
                problems.append(f"{text}: parsed {got}, want {want}")
            if parsed.stable_abi != (implementation == "stable"):
                problems.append(f"{text}: stable_abi is {parsed.stable_abi}")
            if parse_suffix(str(parsed)) != parsed:
                problems.append(f"{text}: second parse differs")
            if libc is None and (twin_suffixes(parsed) != () or twin_suffix_strings(text) != []):
                problems.append(f"{text}: a suffix without libc part has twins")
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.parametrize("arch", sorted(EXPECTED_ARCHITECTURES))
def test_grid_twins(arch: str) -> None:
    problems: list[str] = []
    for abi, _implementation, _version, _flags in ABI_CASES:
        for libc in ALL_LIBC:
            text = f".{abi}-{arch}-linux-{libc}.so"
            parsed = parse_suffix(text)
            _check_twin_invariants(parsed, problems)
            want = expected_twins(arch, libc)
            got = {t.libc for t in twin_suffixes(parsed)}
            if want is not None and got != want:
                problems.append(f"{text}: twins have libc {sorted(got)}, want {sorted(want)}")
    assert problems == [], "\n".join(problems[:40])


NON_MIPS64 = sorted(EXPECTED_ARCHITECTURES - set(MIPS64))


@pytest.mark.parametrize(("gnu", "musl"), GENERIC_PAIRS)
@pytest.mark.parametrize("arch", NON_MIPS64)
def test_generic_pairs_both_ways(arch: str, gnu: str, musl: str) -> None:
    assert libc_twins(arch, gnu) == (musl,)
    assert libc_twins(arch, musl) == (gnu,)
    assert twin_suffix_strings(f".cpython-313-{arch}-linux-{gnu}.so") == [f".cpython-313-{arch}-linux-{musl}.so"]
    assert twin_suffix_strings(f".cpython-313t-{arch}-linux-{musl}.so") == [f".cpython-313t-{arch}-linux-{gnu}.so"]


@pytest.mark.parametrize("arch", MIPS64)
def test_mips64_n64_twins(arch: str) -> None:
    gnu = parse_suffix(f".cpython-312-{arch}-linux-gnuabi64.so")
    assert {str(t) for t in twin_suffixes(gnu)} == {
        f".cpython-312-{arch}-linux-musl.so",
        f".cpython-312-{arch}-linux-muslabi64.so",
    }
    for musl in ("musl", "muslabi64"):
        m = parse_suffix(f".cpython-312-{arch}-linux-{musl}.so")
        assert [str(t) for t in twin_suffixes(m)] == [f".cpython-312-{arch}-linux-gnuabi64.so"]
        # ``musl`` on 64-bit MIPS must never be paired with plain ``gnu``.
        assert "gnu" not in libc_twins(arch, musl)
    assert set(libc_twins(arch, "gnuabin32")) == {"musln32"}
    assert set(libc_twins(arch, "musln32")) == {"gnuabin32"}


def test_real_world_examples() -> None:
    table = {
        ".cpython-311-x86_64-linux-gnu.so": [".cpython-311-x86_64-linux-musl.so"],
        ".cpython-313t-aarch64-linux-musl.so": [".cpython-313t-aarch64-linux-gnu.so"],
        ".cpython-312-arm-linux-gnueabihf.so": [".cpython-312-arm-linux-musleabihf.so"],
        ".cpython-310-i386-linux-gnu.so": [".cpython-310-i386-linux-musl.so"],
        ".cpython-311-powerpc64le-linux-musl.so": [".cpython-311-powerpc64le-linux-gnu.so"],
        ".cpython-311-x86_64-linux-gnux32.so": [".cpython-311-x86_64-linux-muslx32.so"],
        ".cpython-313td-x86_64-linux-gnu.so": [".cpython-313td-x86_64-linux-musl.so"],
        ".pypy310-pp73-x86_64-linux-gnu.so": [".pypy310-pp73-x86_64-linux-musl.so"],
        ".abi3-x86_64-linux-gnu.so": [".abi3-x86_64-linux-musl.so"],
        ".abi3t-riscv64-linux-musl.so": [".abi3t-riscv64-linux-gnu.so"],
        ".graalpy250-311-native-x86_64-linux.so": [],
        ".cpython-311-x86_64-linux-android.so": [],
    }
    for suffix, twins in table.items():
        assert [str(t) for t in twin_suffixes(parse_suffix(suffix))] == twins, suffix
        assert twin_suffix_strings(suffix) == twins, suffix


# --------------------------------------------------------------------------
# ABI flags
# --------------------------------------------------------------------------


@pytest.mark.parametrize("minor", range(13, 16))
def test_free_threaded_debug_is_spelled_td_by_cpython(minor: int) -> None:
    # configure.ac: --disable-gil appends "t" to ABIFLAGS before
    # --with-pydebug appends "d": sys.abiflags == "td", SOABI cpython-313td.
    text = f".cpython-3{minor}td-x86_64-linux-gnu.so"
    parsed = parse_suffix(text)
    assert str(parsed) == text
    assert parsed.flags == "td"
    assert parsed.version == (3, minor)
    assert [str(t) for t in twin_suffixes(parsed)] == [f".cpython-3{minor}td-x86_64-linux-musl.so"]
    assert twin_suffix_strings(text) == [f".cpython-3{minor}td-x86_64-linux-musl.so"]


@pytest.mark.parametrize("flags", ["dd", "tt", "dt", "dtd", "tdt", "mm", "x", "D", "T", "dx"])
def test_bad_or_repeated_flags_rejected(flags: str) -> None:
    with pytest.raises(SuffixError):
        parse_suffix(f".cpython-313{flags}-x86_64-linux-gnu.so")


# --------------------------------------------------------------------------
# What is not a tagged suffix
# --------------------------------------------------------------------------

GARBAGE = [
    "",
    ".",
    "so",
    ".so",
    "..so",
    ".abi3.so",
    ".abi3t.so",
    ".cpython-311.so",
    "cpython-311-x86_64-linux-gnu.so",
    ".cpython-311-x86_64-linux-gnu",
    ".cpython-311-x86_64-linux-gnu.so.1",
    ".cpython-311-x86_64-linux-gnu.pyd",
    ".cpython-311-x86_64-linux-gnu.SO",
    ".cpython-311-x86_64-linux-gnu.so\n",
    ".cpython-311-x86_64-linux-gnu\n.so",
    " .cpython-311-x86_64-linux-gnu.so",
    ".cpython-311-x86_64-linux-gnu .so",
    ".cpython-311-x86_64-linux-.so",
    ".cpython-311-x86_64-linux-gnu-.so",
    ".cpython-311-x86_64-linux-gnu-linux-gnu.so",
    ".cpython-311-x86_64-gnu.so",
    ".cpython-311-x86_64-darwin.so",
    ".cpython-311-darwin.so",
    ".cpython-311-x86_64-Linux-gnu.so",
    ".cpython-311-x86_64-linux-GNU.so",
    ".cpython-311--linux-gnu.so",
    ".-x86_64-linux-gnu.so",
    "-x86_64-linux-gnu.so",
    ".cpython-3-x86_64-linux-gnu.so",
    ".cpython-311x-x86_64-linux-gnu.so",
    ".cpython311-x86_64-linux-gnu.so",
    ".CPython-311-x86_64-linux-gnu.so",
    ".pypy310-x86_64-linux-gnu.so",
    ".pypy310-ppx-x86_64-linux-gnu.so",
    ".graalpy250-311-x86_64-linux.so",
    ".abi4-x86_64-linux-gnu.so",
    ".abi3tt-x86_64-linux-gnu.so",
    ".cp311-x86_64-linux-gnu.so",
    ".cpython-311-x86_64-linux-gnu.so.cpython-311-x86_64-linux-gnu.so",
    ".cpython-311-x86_64-linux-gnu.so" * 3,
    ".cpython-311-x86_64-linux-gn\u00fc.so",
    ".cpython-311-x86\u200b_64-linux-gnu.so",
    "\x00.cpython-311-x86_64-linux-gnu.so",
    ".cpython-311-x86_64-linux-gnu\x00.so",
    ".-" * 500 + ".so",
    "." + "a-" * 2000 + "x86_64-linux-gnu-.so",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_raises_suffix_error(text: str) -> None:
    with pytest.raises(SuffixError):
        parse_suffix(text)


@pytest.mark.parametrize("value", [None, b".cpython-311-x86_64-linux-gnu.so", 3, 3.11, [], object()])
def test_non_string_raises_suffix_error(value: object) -> None:
    with pytest.raises(SuffixError):
        parse_suffix(value)  # type: ignore[arg-type]


def test_suffix_error_is_a_value_error_and_ours() -> None:
    assert issubclass(SuffixError, ValueError)
    assert issubclass(SuffixError, SoabiShimError)


@pytest.mark.parametrize(
    "text", [".so", ".abi3.so", ".abi3t.so", ".cpython-311.so", "", ".graalpy250-311-native-x86_64-linux.so"]
)
def test_twin_suffix_strings_has_nothing_for_untagged(text: str) -> None:
    assert twin_suffix_strings(text) == []


def test_huge_version_number_raises_suffix_error() -> None:
    # BUG: int() of more than 4300 digits raises a plain ValueError
    # (sys.get_int_max_str_digits), not SuffixError.
    text = ".cpython-3" + "1" * 5000 + "-x86_64-linux-gnu.so"
    with pytest.raises(SuffixError):
        parse_suffix(text)
    with pytest.raises(SuffixError):
        parse_suffix(".pypy3" + "9" * 5000 + "-pp73-x86_64-linux-gnu.so")


def test_non_ascii_digits_are_not_a_version() -> None:
    # BUG: ``\d`` in a str pattern matches every Unicode decimal digit, so
    # ".cpython-3\u0661\u0661-..." parses as CPython 3.11: a name no interpreter uses.
    for digits in ("\u0661\u0661", "\uff11\uff11", "\u0967\u0967"):  # Arabic-Indic, fullwidth, Devanagari "11"
        with pytest.raises(SuffixError):
            parse_suffix(f".cpython-3{digits}-x86_64-linux-gnu.so")


# --------------------------------------------------------------------------
# split_filename
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stem", "suffix"),
    [
        ("_speedups.cpython-311-x86_64-linux-gnu.so", "_speedups", ".cpython-311-x86_64-linux-gnu.so"),
        ("__init__.cpython-313t-aarch64-linux-musl.so", "__init__", ".cpython-313t-aarch64-linux-musl.so"),
        ("x.abi3-x86_64-linux-gnu.so", "x", ".abi3-x86_64-linux-gnu.so"),
        ("caf\u00e9.pypy310-pp73-x86_64-linux-gnu.so", "caf\u00e9", ".pypy310-pp73-x86_64-linux-gnu.so"),
        ("m2.graalpy250-311-native-x86_64-linux.so", "m2", ".graalpy250-311-native-x86_64-linux.so"),
    ],
)
def test_split_filename(name: str, stem: str, suffix: str) -> None:
    got_stem, got_suffix = split_filename(name)
    assert got_stem == stem
    assert str(got_suffix) == suffix
    assert got_suffix == parse_suffix(suffix)


@pytest.mark.parametrize(
    "name",
    [
        ".cpython-311-x86_64-linux-gnu.so",  # empty stem
        "1abc.cpython-311-x86_64-linux-gnu.so",  # stem starts with a digit
        "foo-bar.cpython-311-x86_64-linux-gnu.so",  # not an identifier
        "foo bar.cpython-311-x86_64-linux-gnu.so",
        "pkg.mod.cpython-311-x86_64-linux-gnu.so",  # dotted stem
        "foo",
        "foo.so",
        "foo.abi3.so",
        "foo.py",
        "foo.cpython-311-i686-linux-gnu.so",
        "foo.cpython-311-x86_64-linux-gnu.so.bak",
        "",
        ".",
    ],
)
def test_split_filename_rejects(name: str) -> None:
    with pytest.raises(SuffixError):
        split_filename(name)


# --------------------------------------------------------------------------
# Model details
# --------------------------------------------------------------------------


def test_ext_suffix_is_frozen_and_hashable() -> None:
    s = parse_suffix(".cpython-311-x86_64-linux-gnu.so")
    with pytest.raises(AttributeError):
        s.libc = "musl"  # type: ignore[misc]
    assert {s, parse_suffix(".cpython-311-x86_64-linux-gnu.so")} == {s}
    assert s.with_libc("musl") == parse_suffix(".cpython-311-x86_64-linux-musl.so")
    assert s.with_libc("gnu") == s


@pytest.mark.parametrize(
    ("libc", "family"),
    [(g, "glibc") for g in GLIBC_SPELLINGS] + [(m, "musl") for m in MUSL_SPELLINGS] + [("android", None), ("", None)],
)
def test_libc_family(libc: str, family: str | None) -> None:
    assert libc_family(libc) == family


def test_twin_table_is_symmetric_for_every_arch_and_spelling() -> None:
    problems = []
    for arch, libc in itertools.product(sorted(EXPECTED_ARCHITECTURES), ALL_LIBC):
        for twin in libc_twins(arch, libc):
            if libc not in libc_twins(arch, twin):
                problems.append(f"{arch}: {libc} -> {twin} but not back")
            if libc_family(twin) == libc_family(libc):
                problems.append(f"{arch}: {libc} -> {twin} stays in one family")
    assert problems == []


# --------------------------------------------------------------------------
# CPython 3.15's suffix list (issue 15 item 3)
# --------------------------------------------------------------------------
#
# Source: CPython's ``Python/dynload_shlib.c`` (``_PyImport_DynLoadFiletab``)
# as changed by python/cpython PR #152461 (gh-122931, merged July 2026 for
# 3.15.0rc1): after ``"." SOABI ".so"`` come, inside ``#ifndef
# Py_GIL_DISABLED``, ``".abi3-" SOABI_PLATFORM ".so"`` and ``".abi3.so"``,
# then (for every build) ``".abi3t-" SOABI_PLATFORM ".so"`` and
# ``".abi3t.so"``, then ``".so"``.  SOABI_PLATFORM is the platform triplet
# (``x86_64-linux-gnu``), so the libc part now appears in stable-ABI names.
# The list below is ``_imp.extension_suffixes()`` of CPython 3.15.0rc2 on
# x86_64 as quoted in robotpy/crossenv PR #165; the free-threaded list
# follows from the same file (no plain abi3 entries under Py_GIL_DISABLED).
# The stored copy of python/cpython that the project's search tool holds has
# Python/dynload_shlib.c only at commit 1113472faa669d5db366ef237a82b7a313f21f46
# (3.7 era, before the change), and the repository snapshot was too large to
# fetch, so the merge commit itself is not cited here.


def cpython315_suffixes(triplet: str, free_threaded: bool) -> list[str]:
    """``_PyImport_DynLoadFiletab`` of a 3.15 build on Linux, in order."""
    t = "t" if free_threaded else ""
    out = [f".cpython-315{t}-{triplet}.so"]
    if not free_threaded:
        out += [f".abi3-{triplet}.so", ".abi3.so"]
    out += [f".abi3t-{triplet}.so", ".abi3t.so", ".so"]
    return out


def test_cpython315_list_as_measured() -> None:
    assert cpython315_suffixes("x86_64-linux-gnu", False) == [
        ".cpython-315-x86_64-linux-gnu.so",
        ".abi3-x86_64-linux-gnu.so",
        ".abi3.so",
        ".abi3t-x86_64-linux-gnu.so",
        ".abi3t.so",
        ".so",
    ]


@pytest.mark.parametrize("free_threaded", [False, True])
@pytest.mark.parametrize(
    "triplet",
    ["x86_64-linux-gnu", "x86_64-linux-musl", "aarch64-linux-musl", "arm-linux-gnueabihf", "mips64el-linux-gnuabi64"],
)
def test_cpython315_suffixes_parse_and_classify(triplet: str, free_threaded: bool) -> None:
    arch, _, libc = triplet.partition("-linux-")
    for text in cpython315_suffixes(triplet, free_threaded):
        if "-linux-" not in text:  # .abi3.so, .abi3t.so, .so: untagged, never aliased
            with pytest.raises(SuffixError):
                parse_suffix(text)
            assert twin_suffix_strings(text) == []
            continue
        parsed = parse_suffix(text)
        assert str(parsed) == text
        assert (parsed.arch, parsed.libc) == (arch, libc)
        if text.startswith(".cpython-"):
            assert (parsed.implementation, parsed.version, parsed.stable_abi) == ("cpython", (3, 15), False)
            assert parsed.flags == ("t" if free_threaded else "")
        else:
            assert parsed.implementation == "stable" and parsed.stable_abi and parsed.version is None
            assert parsed.abi in ("abi3", "abi3t")
            assert parsed.flags == ("t" if parsed.abi == "abi3t" else "")


@pytest.mark.parametrize("free_threaded", [False, True])
@pytest.mark.parametrize(
    ("gnu", "musl"), [("x86_64-linux-gnu", "x86_64-linux-musl"), ("arm-linux-gnueabihf", "arm-linux-musleabihf")]
)
def test_cpython315_twins_cross_only_the_libc(gnu: str, musl: str, free_threaded: bool) -> None:
    """A 3.15 musl interpreter's twins are exactly the gnu build's tagged
    entries of the same flavour: never across abi3 / abi3t, never the t flag."""
    musl_list = cpython315_suffixes(musl, free_threaded)
    gnu_list = cpython315_suffixes(gnu, free_threaded)
    twins: set[str] = set()
    for text in musl_list:
        try:
            parsed = parse_suffix(text)
        except SuffixError:
            continue
        found = [str(t) for t in twin_suffixes(parsed)]
        assert twin_suffix_strings(text) == found
        for twin in twin_suffixes(parsed):
            assert (twin.abi, twin.arch, twin.flags, twin.implementation, twin.version) == (
                parsed.abi,
                parsed.arch,
                parsed.flags,
                parsed.implementation,
                parsed.version,
            )
        twins.update(found)
    assert twins == {s for s in gnu_list if "-linux-" in s}
    other_flavour = cpython315_suffixes(gnu, not free_threaded)
    crossing = twins & (set(other_flavour) - set(gnu_list))
    assert not crossing, crossing  # e.g. never .abi3-<gnu>.so for a free-threaded musl build
    if free_threaded:
        assert f".abi3-{gnu}.so" not in twins and f".cpython-315-{gnu}.so" not in twins
    else:
        assert f".cpython-315t-{gnu}.so" not in twins
