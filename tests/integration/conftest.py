"""Fixtures shared by the integration tests: a real musl-named extension's
bytes and an empty site directory in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MUSL_SUFFIX


@pytest.fixture
def so(ext_dir: Path) -> bytes:
    return (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    s = tmp_path / "site-packages"
    s.mkdir()
    return s
