"""The pluggy plugin API: in-process plugins and installed entry-point plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import soabi_shim
from soabi_shim import Verdict, hookimpl
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, make_wheel
from tests.integration.test_refusals import install_dist

DISTRO_SUFFIX = EXT_SUFFIX.replace("-linux-gnu.so", "-linux-distro.so")


class DistroSpelling:
    """A distro whose packages use their own SOABI spelling."""

    @hookimpl
    def soabi_shim_twin_suffixes(self, accepted: object, facts: object) -> list[str]:
        return [DISTRO_SUFFIX] if str(accepted) == EXT_SUFFIX else []


class VetoSecret:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: soabi_shim.Alias, facts: object) -> Optional[Verdict]:
        if "secret" in candidate.path:  # type: ignore[attr-defined]
            return Verdict.refuse("vetoed by policy")
        return None


class Broken:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object) -> None:
        raise RuntimeError("boom")

    @hookimpl
    def soabi_shim_report(self, report: object) -> None:
        raise ValueError("bad report hook")


class Recorder:
    def __init__(self) -> None:
        self.reports: list[soabi_shim.Report] = []

    @hookimpl
    def soabi_shim_report(self, report: soabi_shim.Report) -> None:
        self.reports.append(report)


def test_extra_twin_pair_and_veto(tmp_path: Path, ext_dir: Path) -> None:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    install_dist(site, "distro", {f"distro/_speed{DISTRO_SUFFIX}": so})
    install_dist(site, "secret", {f"secret/_speed{MUSL_SUFFIX}": so})
    install_dist(site, "plain", {f"plain/_speed{MUSL_SUFFIX}": so})
    recorder = Recorder()
    report = soabi_shim.heal([str(site)], plugins=[DistroSpelling(), VetoSecret(), recorder])
    made = {a.alias for a in report.aliases if a.action == "created"}
    assert made == {str(site / "distro" / f"_speed{EXT_SUFFIX}"), str(site / "plain" / f"_speed{EXT_SUFFIX}")}
    assert [(p.path, p.reason) for p in report.problems] == [
        (str(site / "secret" / f"_speed{MUSL_SUFFIX}"), "vetoed by policy")
    ]
    assert recorder.reports == [report]
    # Without the plugin the distro spelling is not a candidate at all.
    assert soabi_shim.undo([str(site)], plugins=[DistroSpelling()]).ok
    assert not (site / "distro" / f"_speed{EXT_SUFFIX}").exists()


def test_raising_plugin_refuses_the_candidate_fail_closed(tmp_path: Path, ext_dir: Path) -> None:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    install_dist(site, "plain", {f"plain/_speed{MUSL_SUFFIX}": so})
    report = soabi_shim.heal([str(site)], plugins=[Broken()])
    assert [a.action for a in report.aliases] == []
    assert not (site / "plain" / f"_speed{EXT_SUFFIX}").is_symlink()
    reasons = [p.reason for p in report.problems]
    assert any("raised ValueError: bad report hook" in r for r in reasons)


PLUGIN_SOURCE = b"""
from soabi_shim import Verdict, hookimpl

@hookimpl
def soabi_shim_check_candidate(candidate, facts):
    if candidate.distribution == "vetoed":
        return Verdict.refuse("vetoed by the installed plugin")
    return None
"""


def install_plugin(tmp_path: Path, module: str, source: bytes, entry_point: str) -> Path:
    """Install a real distribution with a ``soabi_shim`` entry point; return its dir."""
    wheel = make_wheel(
        tmp_path / "w",
        module,
        "1.0",
        {f"{module}.py": source},
        tag="py3-none-any",
        extra_dist_info={"entry_points.txt": f"[soabi_shim]\n{entry_point} = {module}\n"},
    )
    plugin_site = tmp_path / "plugin-site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(plugin_site), str(wheel)],
        check=True,
        capture_output=True,
    )
    return plugin_site


def test_installed_entry_point_plugin(tmp_path: Path, ext_dir: Path) -> None:
    plugin_site = install_plugin(tmp_path, "veto_plugin", PLUGIN_SOURCE, "veto")
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    install_dist(site, "vetoed", {f"vetoed/_speed{MUSL_SUFFIX}": so})
    install_dist(site, "fine", {f"fine/_speed{MUSL_SUFFIX}": so})
    env = dict(os.environ, PYTHONPATH=f"{plugin_site}{os.pathsep}{ROOT}")
    out = subprocess.run(
        [sys.executable, "-m", "soabi_shim", "heal", "--json", str(site)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["problems"] == [
        {"path": str(site / "vetoed" / f"_speed{MUSL_SUFFIX}"), "reason": "vetoed by the installed plugin"}
    ]
    assert [a["alias"] for a in report["aliases"]] == [str(site / "fine" / f"_speed{EXT_SUFFIX}")]


def test_plugin_failing_to_load_is_reported(tmp_path: Path) -> None:
    plugin_site = install_plugin(tmp_path, "bad_plugin", b"raise ImportError('cannot load me')\n", "bad")
    site = tmp_path / "site"
    site.mkdir()
    env = dict(os.environ, PYTHONPATH=f"{plugin_site}{os.pathsep}{ROOT}")
    out = subprocess.run(
        [sys.executable, "-m", "soabi_shim", "check", str(site)], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 1
    assert "plugin 'bad' failed to load: ImportError: cannot load me" in out.stdout
    assert "Traceback" not in out.stderr
