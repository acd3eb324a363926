"""Atheris fuzz target for the suffix model and the RECORD parser.

Not part of the test suite (pytest does not collect ``fuzz_*.py``) and the
suite does not need atheris.  Run by hand::

    pip install atheris
    python tests/fuzz/fuzz_suffixes.py -atheris_runs=200000
    python tests/fuzz/fuzz_suffixes.py -max_total_time=60 corpus_dir/

Properties checked on every input:

* ``parse_suffix`` raises only ``SuffixError`` or returns a value whose
  ``str()`` is the input, that re-parses equal, and whose twins differ only
  in libc, parse, and lead back to the original;
* ``_twins.twin_suffix_strings`` (string work, used at start-up) agrees with
  ``twin_suffixes`` on every suffix that parses;
* ``split_filename`` raises only ``SuffixError``;
* ``parse_record`` raises only ``RecordError`` or returns 3-tuples of str
  with a non-empty path.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import atheris

with atheris.instrument_imports():
    from soabi_shim._twins import twin_suffix_strings
    from soabi_shim.errors import RecordError, SuffixError
    from soabi_shim.record import parse_record
    from soabi_shim.suffixes import parse_suffix, split_filename, twin_suffixes

SEEDS = [
    ".cpython-311-x86_64-linux-gnu.so",
    ".cpython-313td-aarch64-linux-musl.so",
    ".pypy310-pp73-i386-linux-gnu.so",
    ".graalpy250-311-native-x86_64-linux.so",
    ".abi3t-mips64el-linux-gnuabi64.so",
    ".cpython-312-arm-linux-musleabihf.so",
]


def check_suffix(text: str) -> None:
    try:
        parsed = parse_suffix(text)
    except SuffixError:
        return
    if str(parsed) != text:
        raise AssertionError(f"{text!r} parses as {parsed!r}, str {parsed}")
    if parse_suffix(str(parsed)) != parsed:
        raise AssertionError(f"{text!r}: second parse differs")
    twins = twin_suffixes(parsed)
    if twin_suffix_strings(text) != [str(t) for t in twins]:
        raise AssertionError(f"{text!r}: twin_suffix_strings {twin_suffix_strings(text)} != {[str(t) for t in twins]}")
    for twin in twins:
        same = (twin.abi, twin.arch, twin.implementation, twin.version, twin.flags)
        if same != (parsed.abi, parsed.arch, parsed.implementation, parsed.version, parsed.flags):
            raise AssertionError(f"{text!r}: twin {twin} changes more than libc")
        if parse_suffix(str(twin)) != twin or parsed not in twin_suffixes(twin):
            raise AssertionError(f"{text!r}: twin {twin} does not lead back")


def check_record(data: bytes) -> None:
    try:
        rows = parse_record(data)
    except RecordError:
        return
    for row in rows:
        if not (isinstance(row, tuple) and len(row) == 3 and all(isinstance(f, str) for f in row) and row[0]):
            raise AssertionError(f"bad row {row!r}")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    choice = fdp.ConsumeIntInRange(0, 3)
    if choice == 0:
        check_suffix(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif choice == 1:
        # Splice fuzz text into a real suffix to get past the first checks.
        seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        cut = fdp.ConsumeIntInRange(0, len(seed))
        check_suffix(seed[:cut] + fdp.ConsumeUnicodeNoSurrogates(16) + seed[cut:])
    elif choice == 2:
        name = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
        try:
            split_filename(name)
        except SuffixError:
            pass
    else:
        check_record(fdp.ConsumeBytes(fdp.remaining_bytes()))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
