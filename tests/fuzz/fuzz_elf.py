"""Atheris fuzz target for the ELF reader: only ``ElfError``, and memory and
work bounded by the input's size.

Not part of the test suite (pytest does not collect ``fuzz_*.py``); the
same property runs under hypothesis in ``tests/unit/test_elf_bounds.py``
(``test_memory_and_work_bounded_by_size``).  Run by hand::

    pip install atheris
    python tests/fuzz/fuzz_elf.py -atheris_runs=100000
    python tests/fuzz/fuzz_elf.py -max_total_time=60 corpus_dir/

Checked on every input (written to a temporary file and parsed through the
same reader ``read_elf`` uses):

* the parse returns or raises ``ElfError`` (anything else is a crash);
* the ``tracemalloc`` peak is at most 8 x the input size + 512 KiB;
* the bytes read are at most 8 x the input size + 64 KiB, and the number of
  reads stays under the fixed bound set by the reader's limits.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import atheris

with atheris.instrument_imports():
    from tests.unit.test_elf import make_elf
    from tests.unit.test_elf_bounds import BOMBS, assert_bounded, header_then_zeros

_DIR = tempfile.mkdtemp(prefix="fuzz-elf-")
_PATH = os.path.join(_DIR, "x.so")


def TestOneInput(data: bytes) -> None:
    assert_bounded(data, _PATH)


def main() -> None:
    seeds = [*BOMBS, header_then_zeros(4), make_elf(needed=("libc.so.6",), interp="/lib/ld-musl-x86_64.so.1")]
    for seed in seeds:  # the seeds must pass before fuzzing starts
        TestOneInput(seed)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
