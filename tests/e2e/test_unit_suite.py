"""The project's own unit suite, run *on* every musl-linked interpreter of the matrix.

The package claims Python 3.9+; the host runs only its own CPython.  Here each
built interpreter (3.9, 3.11 ``-musl`` and ``-gnu``, 3.13, 3.13t) gets a venv
with this checkout's wheel, pytest and hypothesis (pure-Python wheels for its
version) and runs ``python -m pytest tests/unit`` of this checkout; any failure
there fails this test, with pytest's output.

The integration suite is not run there: it compiles extension modules with the
host's gcc (glibc) and installs them into venvs of the running interpreter,
which a musl interpreter refuses by design; the end-to-end tests in this
directory cover those paths on musl with real wheels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import FLAVOURS, MuslVenv, _unavailable
from tools import build_musl_python as builder

pytestmark = pytest.mark.e2e

TEST_REQUIREMENTS = ["pytest>=7", "hypothesis>=6"]


def _test_wheels(version: str, cache: Path) -> Path:
    """pytest, hypothesis and their dependencies as wheels for ``version``, cached."""
    pyver = version.rstrip("t")
    d = cache / "test-deps" / pyver
    # pip download evaluates environment markers for the host (3.11), not for
    # --python-version: name the backports pytest and hypothesis need before 3.11.
    backports = ["exceptiongroup>=1", "tomli>=1"] if tuple(map(int, pyver.split("."))) < (3, 11) else []
    if not (d / ".complete").is_file():
        d.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--python-version",
                pyver,
                "--implementation",
                "py",
                "-d",
                str(d),
                *TEST_REQUIREMENTS,
                *backports,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            _unavailable(f"cannot download pytest/hypothesis for {pyver}: {r.stderr.strip()[-200:]}")
        (d / ".complete").write_text("")
    return d


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_unit_suite_passes_on_the_interpreter(
    flavour: str,
    make_venv: object,
    shim_wheelhouse: dict[str, Path],
    e2e_cache: Path,
    tmp_path: Path,
) -> None:
    version = FLAVOURS[flavour]
    venv: MuslVenv = make_venv(flavour, "unit")  # type: ignore[operator]
    wheels = _test_wheels(version, e2e_cache)
    venv.pip(
        "install",
        "--no-index",
        "--find-links",
        str(shim_wheelhouse[version]),
        "--find-links",
        str(wheels),
        "soabi-shim",
        *TEST_REQUIREMENTS,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOABI_SHIM_", "PYTHON", "PYTEST"))}
    work = tmp_path / "cwd"  # hypothesis' database and pytest's files land here, not in the checkout
    work.mkdir()
    out = subprocess.run(
        [
            str(venv.python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            str(ROOT / "tests" / "unit"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    tail = out.stdout[-4000:] + out.stderr[-2000:]
    assert out.returncode == 0, tail
    summary = out.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 100, tail
    assert not re.search(r"\d+ (failed|error)", summary), tail
    # The suite ran on this interpreter.
    soabi = venv.run("import sysconfig; print(sysconfig.get_config_var('SOABI'))").stdout.strip()
    assert soabi == builder.FLAVOURS[flavour]["soabi"]
