"""The suffix model at its edges: the messages of its refusals (shown to users
as problems), the bounds of each version field, the corners of the triplet
split, and what a parsed suffix gives back.

Written against mutants that survived the rest of the suite (tools/mutation.py).
"""

from __future__ import annotations

import re

import pytest

from soabi_shim.errors import SuffixError
from soabi_shim.suffixes import ExtSuffix, libc_family, parse_suffix, split_filename, twin_suffixes

TRIPLET = "x86_64-linux-gnu"


def refusal(text: str) -> str:
    """The message ``parse_suffix`` refuses ``text`` with."""
    with pytest.raises(SuffixError) as info:
        parse_suffix(text)
    return str(info.value)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def test_split_filename_names_what_it_refuses() -> None:
    with pytest.raises(SuffixError, match=r"^not an extension module file name: '1x\.so'$"):
        split_filename("1x.so")
    # No dot at all: refused as a file name, not as a suffix.
    with pytest.raises(SuffixError, match=r"^not an extension module file name: 'mod'$"):
        split_filename("mod")
    # A good stem: the rest is judged as a suffix.
    with pytest.raises(SuffixError, match=r"^not a tagged extension suffix: '\.so'$"):
        split_filename("mod.so")


@pytest.mark.parametrize(
    ("name", "stem", "suffix"),
    [
        ("_speedups.cpython-311-x86_64-linux-gnu.so", "_speedups", ".cpython-311-x86_64-linux-gnu.so"),
        ("m.abi3t-aarch64-linux-musl.so", "m", ".abi3t-aarch64-linux-musl.so"),
    ],
)
def test_split_filename_splits_at_the_first_dot(name: str, stem: str, suffix: str) -> None:
    got_stem, got_suffix = split_filename(name)
    assert got_stem == stem
    assert got_suffix == parse_suffix(suffix)
    assert str(got_suffix) == suffix


def test_parse_suffix_messages() -> None:
    with pytest.raises(SuffixError, match=r"^suffix must be a string, not int$"):
        parse_suffix(3)  # type: ignore[arg-type]
    with pytest.raises(SuffixError, match=r"^not a tagged extension suffix: '\.so'$"):
        parse_suffix(".so")
    with pytest.raises(SuffixError, match=r"^no Linux platform triplet in '\.cpython-311-x86_64-darwin\.so'$"):
        parse_suffix(".cpython-311-x86_64-darwin.so")
    with pytest.raises(SuffixError, match=r"^unknown implementation tag 'jython27'$"):
        parse_suffix(".jython27-x86_64-linux-gnu.so")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Too short to hold anything between the dot and ".so".
        ("..so", "not a tagged extension suffix: '..so'"),
        # Five characters: long enough to be judged by its triplet.
        (".x.so", "no Linux platform triplet in '.x.so'"),
        # The leading dot is required, not just the ".so" end.
        ("_cpython-311-x86_64-linux-gnu.so", "not a tagged extension suffix: '_cpython-311-x86_64-linux-gnu.so'"),
        ("cpython-311-x86_64-linux-gnu.so", "not a tagged extension suffix: 'cpython-311-x86_64-linux-gnu.so'"),
        # The abi part is never empty: a leading dash is part of it.
        (".-x86_64-linux-gnu.so", "no Linux platform triplet in '.-x86_64-linux-gnu.so'"),
        # A one-character abi is still split off (and then not known).
        (".a-x86_64-linux-gnu.so", "unknown implementation tag 'a'"),
        # The first dash of a "--" pair can end the abi.
        (".cpython-311--x86_64-linux-gnu.so", "unknown implementation tag 'cpython-311-'"),
        # No newline in the abi (the regular expression's ``.`` stops there).
        (".cpython-311\n-x86_64-linux-gnu.so", "no Linux platform triplet in '.cpython-311\\n-x86_64-linux-gnu.so'"),
        # Nothing after the libc part.
        (".cpython-311-x86_64-linux-gnu-x.so", "no Linux platform triplet in '.cpython-311-x86_64-linux-gnu-x.so'"),
        (".cpython-311-x86_64-linux-gnu-.so", "no Linux platform triplet in '.cpython-311-x86_64-linux-gnu-.so'"),
        # The libc part is lower-case letters and digits only.
        (".cpython-311-x86_64-linux-GNU.so", "no Linux platform triplet in '.cpython-311-x86_64-linux-GNU.so'"),
        (".cpython-311-x86_64-linux-gn_u.so", "no Linux platform triplet in '.cpython-311-x86_64-linux-gn_u.so'"),
    ],
)
def test_refusal_messages_at_the_edges(text: str, message: str) -> None:
    assert refusal(text) == message


# --------------------------------------------------------------------------
# Version fields: the largest accepted, one more refused
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("abi", "triplet", "implementation", "version", "flags"),
    [
        ("cpython-3100", TRIPLET, "cpython", (3, 100), ""),
        ("cpython-3100td", TRIPLET, "cpython", (3, 100), "td"),
        ("cpython-37m", TRIPLET, "cpython", (3, 7), "m"),
        ("cpython-37dm", TRIPLET, "cpython", (3, 7), "dm"),
        ("pypy3100-pp7300", TRIPLET, "pypy", (3, 100), ""),
        ("pypy39-pp7", TRIPLET, "pypy", (3, 9), ""),
        ("graalpy123456-3100-native", "x86_64-linux", "graalpy", (3, 100), ""),
        ("graalpy1-39-native", "x86_64-linux", "graalpy", (3, 9), ""),
        ("abi3", "riscv64-linux-musl", "stable", None, ""),
        ("abi3t", "riscv64-linux-musl", "stable", None, "t"),
    ],
)
def test_version_fields_at_their_largest_and_smallest(
    abi: str, triplet: str, implementation: str, version: tuple[int, int] | None, flags: str
) -> None:
    text = f".{abi}-{triplet}.so"
    parsed = parse_suffix(text)
    assert (parsed.abi, parsed.implementation, parsed.version, parsed.flags) == (abi, implementation, version, flags)
    assert str(parsed) == text


@pytest.mark.parametrize(
    "abi",
    [
        "cpython-31000",  # minor of four digits
        "cpython-3",  # no minor
        "cpython-t11",  # flags before the version
        "cpython-3X1",
        "cpython-x11",
        "pypy31000-pp73",  # minor of four digits
        "pypy3-pp73",  # no minor
        "pypy3x-pp73",
        "pypy310-pp12345",  # pp of five digits
        "pypy310-pp",
        "pypy310-pp7x",
        "pypy3\u0661\u0661-pp73",  # Arabic-Indic "11": \d is ASCII here
        "pypy310-pp\uff17\uff13",  # fullwidth "73"
        "graalpy1234567-311-native",  # GraalPy version of seven digits
        "graalpyx-311-native",
        "graalpy\u0662\u0665\u0660-311-native",
        "graalpy250-31000-native",  # minor of four digits
        "graalpy250-3-native",
        "graalpy250-3x-native",
        "graalpy250-3\u0661\u0661-native",
        "graalpy250-311-foo",  # not "native"
        "graalpy250-311-native-foo",
        "graalpy250-311",
    ],
)
def test_version_fields_out_of_bounds_are_unknown_tags(abi: str) -> None:
    triplet = "x86_64-linux" if abi.startswith("graalpy") else TRIPLET
    assert refusal(f".{abi}-{triplet}.so") == f"unknown implementation tag {abi!r}"


# --------------------------------------------------------------------------
# libc_family, ExtSuffix and the twins
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("libc", "family"),
    [
        ("gnu", "glibc"),
        ("gnueabihf", "glibc"),
        ("gnuabi64", "glibc"),
        ("musl", "musl"),
        ("musleabihf", "musl"),
        ("muslx32", "musl"),
        ("android", None),
        ("uclibc", None),
        ("GNU", None),
        ("MUSL", None),
        ("", None),
    ],
)
def test_libc_family(libc: str, family: str | None) -> None:
    assert libc_family(libc) == family


def test_ext_suffix_fields_str_and_with_libc() -> None:
    s = ExtSuffix("cpython-313t", "aarch64", "musl", "cpython", (3, 13), "t")
    assert (s.abi, s.arch, s.libc, s.implementation, s.version, s.flags) == (
        "cpython-313t",
        "aarch64",
        "musl",
        "cpython",
        (3, 13),
        "t",
    )
    assert str(s) == ".cpython-313t-aarch64-linux-musl.so"
    assert not s.stable_abi
    g = s.with_libc("gnu")
    assert g == ExtSuffix("cpython-313t", "aarch64", "gnu", "cpython", (3, 13), "t")
    assert str(g) == ".cpython-313t-aarch64-linux-gnu.so"
    assert s.libc == "musl"  # unchanged
    bare = ExtSuffix("graalpy250-311-native", "x86_64", None, "graalpy", (3, 11), "")
    assert str(bare) == ".graalpy250-311-native-x86_64-linux.so"
    assert twin_suffixes(bare) == ()
    assert ExtSuffix("abi3", "x86_64", "gnu", "stable", None, "").stable_abi
    with pytest.raises(AttributeError):
        s.libc = "gnu"  # type: ignore[misc]


def test_parse_gives_every_field() -> None:
    assert parse_suffix(".pypy310-pp73-s390x-linux-musl.so") == ExtSuffix(
        "pypy310-pp73", "s390x", "musl", "pypy", (3, 10), ""
    )
    assert parse_suffix(".graalpy-311-native-x86_64-linux.so") == ExtSuffix(
        "graalpy-311-native", "x86_64", None, "graalpy", (3, 11), ""
    )


@pytest.mark.parametrize(
    ("suffix", "twins"),
    [
        (
            ".cpython-312-mips64el-linux-gnuabi64.so",
            [".cpython-312-mips64el-linux-musl.so", ".cpython-312-mips64el-linux-muslabi64.so"],
        ),
        (".cpython-313-mips64-linux-musl.so", [".cpython-313-mips64-linux-gnuabi64.so"]),
        (".cpython-313-x86_64-linux-musl.so", [".cpython-313-x86_64-linux-gnu.so"]),
        (".abi3-arm-linux-gnueabihf.so", [".abi3-arm-linux-musleabihf.so"]),
        (".cpython-313-x86_64-linux-android.so", []),
    ],
)
def test_twin_suffixes(suffix: str, twins: list[str]) -> None:
    got = twin_suffixes(parse_suffix(suffix))
    assert [str(t) for t in got] == twins
    for twin in got:
        assert re.sub(r"-linux-[a-z0-9]+\.so$", "", str(twin)) == re.sub(r"-linux-[a-z0-9]+\.so$", "", suffix)
