"""Hypothesis properties of the suffix model and of RECORD handling."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from soabi_shim._twins import twin_suffix_strings
from soabi_shim.errors import RecordError, SuffixError
from soabi_shim.record import append_rows, parse_record, read_record, remove_rows
from soabi_shim.suffixes import ARCHITECTURES, ExtSuffix, parse_suffix, split_filename, twin_suffixes

SETTINGS = settings(deadline=None, database=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(deadline=None, database=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------
# Suffix grammar
# --------------------------------------------------------------------------

LIBCS = [
    "gnu", "musl", "gnueabi", "musleabi", "gnueabihf", "musleabihf", "gnux32", "muslx32",
    "gnuspe", "muslspe", "gnuf32", "muslf32", "gnusf", "muslsf", "gnuabin32", "musln32",
    "gnuabi64", "muslabi64", "gnuabi64sf", "gnuabin32sf", "musln32sf", "android",
]  # fmt: skip
NEAR_ARCHES = ["i686", "armv7l", "ppc64le", "amd64", "arm64", "X86_64", "x86-64", ""]

digits = st.text(alphabet="0123456789", min_size=0, max_size=4)
small_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", max_size=8)

cpython_abi = st.builds(
    lambda maj, mnr, flags: f"cpython-{maj}{mnr}{flags}",
    digits,
    digits,
    st.text(alphabet="dmtx", max_size=3),
)
pypy_abi = st.builds(lambda v, pp: f"pypy{v}-pp{pp}", digits, digits)
graalpy_abi = st.builds(lambda g, v: f"graalpy{g}-{v}-native", digits, digits)
stable_abi = st.sampled_from(["abi3", "abi3t", "abi3tt", "abi", "abi4"])
abi_strategy = st.one_of(cpython_abi, pypy_abi, graalpy_abi, stable_abi, small_token)
arch_strategy = st.one_of(st.sampled_from(sorted(ARCHITECTURES)), st.sampled_from(NEAR_ARCHES), small_token)
libc_strategy = st.one_of(st.none(), st.sampled_from(LIBCS), small_token)
os_strategy = st.sampled_from(["linux", "linux", "linux", "Linux", "darwin", ""])
ending = st.sampled_from([".so", ".so", ".so", ".pyd", ".so.1", "so", ".SO"])
leading = st.sampled_from([".", ".", ".", "", ".."])


@st.composite
def grammar_suffixes(draw: st.DrawFn) -> str:
    triplet = f"{draw(arch_strategy)}-{draw(os_strategy)}"
    libc = draw(libc_strategy)
    if libc is not None:
        triplet += f"-{libc}"
    return f"{draw(leading)}{draw(abi_strategy)}-{triplet}{draw(ending)}"


@st.composite
def wellformed_suffixes(draw: st.DrawFn) -> str:
    minor = draw(st.integers(min_value=0, max_value=20))
    abi = draw(
        st.sampled_from(
            [
                f"cpython-3{minor}",
                f"cpython-3{minor}t",
                f"cpython-3{minor}d",
                f"cpython-3{minor}td",
                f"pypy3{minor}-pp73",
                f"graalpy250-3{minor}-native",
                "abi3",
                "abi3t",
            ]
        )
    )
    arch = draw(st.sampled_from(sorted(ARCHITECTURES)))
    libc = draw(st.one_of(st.none(), st.sampled_from(LIBCS)))
    return f".{abi}-{arch}-linux" + (f"-{libc}" if libc else "") + ".so"


def check_suffix(text: object) -> None:
    """parse_suffix either raises SuffixError or gives a round-tripping value
    whose twins are consistent; nothing else may happen."""
    try:
        parsed = parse_suffix(text)  # type: ignore[arg-type]
    except SuffixError:
        return
    assert isinstance(parsed, ExtSuffix)
    assert str(parsed) == text
    assert parse_suffix(str(parsed)) == parsed
    twins = twin_suffixes(parsed)
    assert twin_suffix_strings(str(parsed)) == [str(t) for t in twins]
    for twin in twins:
        assert (twin.abi, twin.arch, twin.implementation, twin.version, twin.flags) == (
            parsed.abi,
            parsed.arch,
            parsed.implementation,
            parsed.version,
            parsed.flags,
        )
        assert twin.libc != parsed.libc
        assert parse_suffix(str(twin)) == twin
        assert parsed in twin_suffixes(twin)  # twin of twin contains the original


@SETTINGS
@given(grammar_suffixes())
def test_grammar_suffixes_parse_or_raise_suffix_error(text: str) -> None:
    check_suffix(text)


@SETTINGS
@given(st.text())
@example("")
@example(".so")
@example(".abi3.so")
@example(".cpython-311-x86_64-linux-gnu.so")
def test_arbitrary_text_parses_or_raises_suffix_error(text: str) -> None:
    check_suffix(text)


@SETTINGS
@given(st.builds(lambda a, b: f".{a}-linux-{b}.so", st.text(max_size=30), st.text(max_size=10)))
def test_near_miss_text_parses_or_raises_suffix_error(text: str) -> None:
    check_suffix(text)


@SETTINGS
@given(wellformed_suffixes())
def test_wellformed_suffixes_always_parse_and_twin_back(text: str) -> None:
    parsed = parse_suffix(text)
    assert str(parsed) == text
    check_suffix(text)
    for twin in twin_suffixes(parsed):
        assert text in twin_suffix_strings(str(twin))


@SETTINGS
@given(st.text(max_size=20), wellformed_suffixes())
def test_split_filename_raises_only_suffix_error(stem: str, suffix: str) -> None:
    name = stem + suffix
    try:
        got_stem, got_suffix = split_filename(name)
    except SuffixError:
        assert not stem.isidentifier() or "." in stem
        return
    assert got_stem == stem and got_stem.isidentifier()
    assert str(got_suffix) == suffix


# --------------------------------------------------------------------------
# RECORD
# --------------------------------------------------------------------------

# Everything but NUL, the CR that csv.writer(lineterminator="\n") leaves
# unquoted (see test_record.test_append_path_with_carriage_return) and lone
# surrogates (not UTF-8 encodable; see test_record).
record_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=24,
)
awkward_text = st.text(alphabet=',"\n ab\u00e9\u65e5\u2028\x85;=', max_size=12)
path_text = st.one_of(record_text, awkward_text).filter(bool)
row_strategy = st.tuples(path_text, st.one_of(st.just(""), record_text), st.one_of(st.just(""), record_text))


def csv_bytes(rows: list[tuple[str, str, str]], lineterminator: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=lineterminator).writerows(rows)
    return buf.getvalue().encode("utf-8")


def _unique_by_path(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


@FILE_SETTINGS
@given(
    st.lists(row_strategy, max_size=8).map(_unique_by_path),
    st.lists(path_text, max_size=6),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_append_then_read_gives_original_plus_new(
    rows: list[tuple[str, str, str]], new: list[str], lineterminator: str, strip_final_newline: bool
) -> None:
    original = csv_bytes(rows, lineterminator)
    if strip_final_newline and original.endswith(lineterminator.encode()):
        candidate = original[: -len(lineterminator)]
        # Only if the stripped file still says the same thing (a final
        # quoted field ending in a newline would change otherwise).
        if parse_record(candidate) == rows:
            original = candidate
    assert parse_record(original) == rows
    site = tempfile.mkdtemp(prefix="soabi-prop-")
    try:
        dist_info = os.path.join(site, "x-1.dist-info")
        os.mkdir(dist_info)
        record = os.path.join(dist_info, "RECORD")
        with open(record, "wb") as f:
            f.write(original)
        present = {r[0] for r in rows}
        expected_new = [p for p in dict.fromkeys(new) if p not in present]
        assert append_rows(record, new) == expected_new
        with open(record, "rb") as f:
            data = f.read()
        assert data.startswith(original)
        assert read_record(record) == rows + [(p, "", "") for p in expected_new]
        # Again: nothing more to add.
        assert append_rows(record, new) == []
        # And removing the new rows gives the original rows back.
        assert sorted(remove_rows(record, expected_new)) == sorted(expected_new)
        assert read_record(record) == rows
        assert [n for n in os.listdir(site) + os.listdir(dist_info) if n.endswith(".tmp")] == []
    finally:
        shutil.rmtree(site)


def check_parse(data: bytes) -> None:
    try:
        rows = parse_record(data)
    except RecordError:
        return
    assert isinstance(rows, list)
    for row in rows:
        assert isinstance(row, tuple) and len(row) == 3
        assert all(isinstance(field, str) for field in row)
        assert row[0]


@SETTINGS
@given(st.binary(max_size=200))
def test_parse_record_arbitrary_bytes(data: bytes) -> None:
    check_parse(data)


@SETTINGS
@given(st.text(alphabet=',"\r\n\x00ab \u00e9', max_size=60))
def test_parse_record_csvish_text(text: str) -> None:
    check_parse(text.encode("utf-8"))


@SETTINGS
@given(st.lists(row_strategy, max_size=10), st.sampled_from(["\n", "\r\n"]))
def test_parse_record_reads_what_csv_writes(rows: list[tuple[str, str, str]], lineterminator: str) -> None:
    assert parse_record(csv_bytes(rows, lineterminator)) == rows


def _outcome(parse: object, arg: object) -> object:
    try:
        return parse(arg)  # type: ignore[operator]
    except RecordError as exc:
        return ("RecordError", str(exc))


def _csv_reference(text: str) -> object:
    """parse_record as it was before the fast path: the csv reader on every RECORD."""
    if "\0" in text:
        return ("RecordError", "RECORD contains NUL bytes")
    try:
        rows = []
        for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
            if len(row) != 3:
                what = "a blank line" if not row else f"{len(row)} fields"
                return ("RecordError", f"RECORD line {number} has {what}, not 3 fields")
            if not row[0]:
                return ("RecordError", f"RECORD line {number} has an empty path")
            rows.append((row[0], row[1], row[2]))
        return rows
    except csv.Error as exc:
        return ("RecordError", f"RECORD is not valid CSV: {exc}")


@SETTINGS
@given(st.text(alphabet=',"\r\nab \u00e9\x0b\x85', max_size=80))
@example("a,b,c\r\nd,e,f\r\n")
@example("a,b,c\n\nd,e,f\n")
@example("a,b,c\r\n\r\n")
@example("a,b,c\rd,e,f\n")
@example(",b,c\n")
@example("a,b\n")
@example("a,b,c,d\r\n")
@example("\n")
@example("a\u2028b,c,d\n")
def test_parse_record_fast_path_answers_as_the_csv_reader(text: str) -> None:
    """The plain fast path (no quotes, LF or CRLF) gives the rows, or the
    exact error, that the csv reader gives for the same RECORD."""
    assert _outcome(parse_record, text.encode("utf-8")) == _csv_reference(text)


def test_parse_record_long_line_keeps_the_csv_readers_field_limit() -> None:
    old = csv.field_size_limit(8)
    try:
        data = b"short,,\nmuch-too-long/path.py,,\n"
        assert _outcome(parse_record, data) == _csv_reference(data.decode())
        assert "field larger than field limit" in str(_outcome(parse_record, data))
        assert parse_record(b"exactly8,,\n") == [("exactly8", "", "")]
    finally:
        csv.field_size_limit(old)


def test_parse_record_plain_records_skip_the_csv_reader(monkeypatch: object) -> None:
    """A RECORD without quotes or lone CRs never reaches the csv reader
    (the fast path is what keeps a healing start and ``check`` fast)."""
    import soabi_shim.record as record

    def refuse(text: str) -> object:
        raise AssertionError("the csv reader was used")

    monkeypatch.setattr(record, "_parse_csv", refuse)  # type: ignore[attr-defined]
    assert parse_record(b"a.py,sha256=x,1\r\nb.py,,\r\n") == [("a.py", "sha256=x", "1"), ("b.py", "", "")]
    assert parse_record(b"a.py,sha256=x,1\nb.py,,") == [("a.py", "sha256=x", "1"), ("b.py", "", "")]
    assert parse_record(b"") == []
