"""Messages of the suffix model's refusals (shown to users as problems)."""

from __future__ import annotations

import pytest

from soabi_shim.errors import SuffixError
from soabi_shim.suffixes import parse_suffix, split_filename


def test_split_filename_names_what_it_refuses() -> None:
    with pytest.raises(SuffixError, match=r"^not an extension module file name: '1x\.so'$"):
        split_filename("1x.so")


def test_parse_suffix_messages() -> None:
    with pytest.raises(SuffixError, match=r"^suffix must be a string, not int$"):
        parse_suffix(3)  # type: ignore[arg-type]
    with pytest.raises(SuffixError, match=r"^not a tagged extension suffix: '\.so'$"):
        parse_suffix(".so")
    with pytest.raises(SuffixError, match=r"^no Linux platform triplet in '\.cpython-311-x86_64-darwin\.so'$"):
        parse_suffix(".cpython-311-x86_64-darwin.so")
    with pytest.raises(SuffixError, match=r"^unknown implementation tag 'jython27'$"):
        parse_suffix(".jython27-x86_64-linux-gnu.so")
