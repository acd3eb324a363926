"""The PDM and Poetry plugins, for real: the tools from PyPI, soabi-shim
installed into the tool's own environment, a project depending on a wheel
whose extension carries the libc-twin name, and the tool's install command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, Venv, make_venv

pytestmark = pytest.mark.slow


def tool_venv(root: Path, shim_wheel: Path, *requirements: str) -> Venv:
    v = make_venv(root)
    v.pip("install", *requirements, str(shim_wheel))
    return v


def run(cmd: list[str], cwd: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SOABI_SHIM_", "VIRTUAL_ENV"))}
    env.update(env_extra)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def project_venv(project: Path) -> Venv:
    v = make_venv(project / ".venv")
    return v


def assert_healed(v: Venv) -> None:
    alias = v.site / "demo" / f"_speed{EXT_SUFFIX}"
    assert alias.is_symlink(), sorted(p.name for p in (v.site / "demo").iterdir())
    assert os.readlink(alias) == f"./_speed{MUSL_SUFFIX}"
    record = (v.site / "demo-1.0.dist-info" / "RECORD").read_text()
    assert f"demo/_speed{EXT_SUFFIX},,\n" in record
    assert v.run("import demo._speed as m; print(m.add(1, 2))").stdout == "3\n"


def test_pdm_post_install(tmp_path: Path, shim_wheel: Path, demo_wheel: Path) -> None:
    # hishel 2.0 dropped the API current pdm releases import (SyncSqliteStorage): pin it below 2.
    tools = tool_venv(tmp_path / "pdm-tools", shim_wheel, "pdm", "hishel<2")
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""[project]
name = "app"
version = "0"
requires-python = ">={sys.version_info[0]}.{sys.version_info[1]}"
dependencies = ["demo @ {demo_wheel.as_uri()}"]

[tool.pdm]
distribution = false
"""
    )
    v = project_venv(project)
    env = {"PDM_IGNORE_ACTIVE_VENV": "1", "PDM_CHECK_UPDATE": "false", "HOME": str(tmp_path)}
    pdm = str(tools.root / "bin" / "pdm")
    use = run([pdm, "use", "-f", str(v.python)], project, env)
    assert use.returncode == 0, use.stdout + use.stderr
    out = run([pdm, "install", "-v"], project, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "soabi-shim: 1 extension alias(es) created" in out.stdout + out.stderr
    assert_healed(v)


def test_poetry_application_plugin(tmp_path: Path, shim_wheel: Path, demo_wheel: Path) -> None:
    tools = tool_venv(tmp_path / "poetry-tools", shim_wheel, "poetry")
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""[tool.poetry]
name = "app"
version = "0"
description = ""
authors = []
package-mode = false

[tool.poetry.dependencies]
python = ">={sys.version_info[0]}.{sys.version_info[1]}"
demo = {{path = "{demo_wheel}"}}
"""
    )
    v = project_venv(project)
    env = {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "HOME": str(tmp_path), "POETRY_NO_INTERACTION": "1"}
    poetry = str(tools.root / "bin" / "poetry")
    listed = run([poetry, "self", "show", "plugins"], project, env)
    assert "soabi-shim" in listed.stdout, listed.stdout + listed.stderr
    out = run([poetry, "install"], project, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "soabi-shim: 1 extension alias(es) created" in out.stdout + out.stderr
    assert_healed(v)
