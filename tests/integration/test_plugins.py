"""The pluggy plugin API: in-process plugins and installed entry-point plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

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


# --------------------------------------------------------------------------
# Fail closed (issue 11): BaseException, MemoryError, misspelt hooks
# --------------------------------------------------------------------------


class Exits:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object) -> None:
        raise SystemExit(3)

    @hookimpl
    def soabi_shim_report(self, report: object) -> None:
        raise SystemExit(4)


class RaisesBase:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object) -> None:
        raise GeneratorExit("odd")


class Interrupts:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object) -> None:
        raise KeyboardInterrupt


class Misspelt:
    @hookimpl
    def soabi_shim_check_candidat(self, candidate: object, facts: object) -> Optional[Verdict]:
        return Verdict.refuse("never called")


class WrongArguments:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object, extra: object) -> None:
        return None


class NotAVerdict:
    @hookimpl
    def soabi_shim_check_candidate(self, candidate: object, facts: object) -> object:
        return False


def _one_candidate_site(tmp_path: Path, ext_dir: Path) -> Path:
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    site = tmp_path / "site"
    install_dist(site, "plain", {f"plain/_speed{MUSL_SUFFIX}": so})
    return site


def test_plugin_system_exit_refuses_and_never_ends_the_process(tmp_path: Path, ext_dir: Path) -> None:
    site = _one_candidate_site(tmp_path, ext_dir)
    report = soabi_shim.heal([str(site)], plugins=[Exits()])  # returning at all is the first assertion
    assert report.aliases == []
    assert not (site / "plain" / f"_speed{EXT_SUFFIX}").is_symlink()
    reasons = [p.reason for p in report.problems]
    assert any("raised SystemExit: 3" in r for r in reasons), reasons
    assert any("raised SystemExit: 4" in r for r in reasons), reasons


def test_plugin_base_exception_refuses(tmp_path: Path, ext_dir: Path) -> None:
    site = _one_candidate_site(tmp_path, ext_dir)
    report = soabi_shim.heal([str(site)], plugins=[RaisesBase()])
    assert report.aliases == []
    assert any("raised GeneratorExit: odd" in p.reason for p in report.problems)


def test_keyboard_interrupt_is_not_swallowed(tmp_path: Path, ext_dir: Path) -> None:
    import pytest

    site = _one_candidate_site(tmp_path, ext_dir)
    with pytest.raises(KeyboardInterrupt):
        soabi_shim.heal([str(site)], plugins=[Interrupts()])
    assert not (site / "plain" / f"_speed{EXT_SUFFIX}").is_symlink()


def test_memory_error_in_the_elf_reader_refuses(monkeypatch: object, tmp_path: Path) -> None:
    from types import SimpleNamespace

    import pytest

    from soabi_shim import builtin
    from soabi_shim.plugins import get_plugin_host

    assert isinstance(monkeypatch, pytest.MonkeyPatch)

    def bomb(path: str) -> None:
        raise MemoryError("out of memory")

    monkeypatch.setattr(builtin, "read_elf", bomb)
    host = get_plugin_host(entry_points=False)
    candidate = SimpleNamespace(path=str(tmp_path / "x.so"), site=str(tmp_path))
    reason = host.check(candidate, SimpleNamespace(elf=None, libc="glibc"))
    assert reason == "the built-in check failed: MemoryError: out of memory"
    # The same exception in a twin-suffix call is a plugin failure, not a crash.
    monkeypatch.setattr(builtin, "twin_suffixes", lambda s: (_ for _ in ()).throw(MemoryError("again")))
    assert host.call("soabi_shim_twin_suffixes", accepted=None, facts=None) == []
    assert host.failures == [("builtin", "plugin 'builtin' raised MemoryError: again")]


def test_misspelt_hook_is_a_problem_and_refuses(tmp_path: Path, ext_dir: Path) -> None:
    from soabi_shim.plugins import get_plugin_host

    host = get_plugin_host([Misspelt()], entry_points=False)
    [(name, message)] = host.failures
    assert name == "Misspelt"
    assert message == "plugin 'Misspelt' implements unknown hook 'soabi_shim_check_candidat' (misspelt?)"
    site = _one_candidate_site(tmp_path, ext_dir)
    report = soabi_shim.heal([str(site)], plugins=[Misspelt()])
    assert report.aliases == []
    reasons = [p.reason for p in report.problems]
    assert any("unknown hook 'soabi_shim_check_candidat'" in r for r in reasons), reasons
    assert any("is broken; nothing is aliased" in r for r in reasons), reasons


def test_plugin_failing_validation_is_a_problem(tmp_path: Path, ext_dir: Path) -> None:
    site = _one_candidate_site(tmp_path, ext_dir)
    report = soabi_shim.heal([str(site)], plugins=[WrongArguments()])
    assert report.aliases == []
    assert any("failed to register: PluginValidationError" in p.reason for p in report.problems)


def test_plugin_returning_a_non_verdict_refuses(tmp_path: Path, ext_dir: Path) -> None:
    site = _one_candidate_site(tmp_path, ext_dir)
    report = soabi_shim.heal([str(site)], plugins=[NotAVerdict()])
    assert report.aliases == []
    assert any("returned bool, not a Verdict" in p.reason for p in report.problems)


# --------------------------------------------------------------------------
# Plugins from the site only (issue 11 item 6)
# --------------------------------------------------------------------------

SITE_PLUGIN = b"""
from soabi_shim import Verdict, hookimpl
ORIGIN = "site"

@hookimpl
def soabi_shim_check_candidate(candidate, facts):
    return Verdict.refuse("vetoed by the site's plugin")
"""

IMPOSTOR = b"""
raise RuntimeError("the impostor in the current directory was imported")
"""


def _site_with_plugin(tmp_path: Path, module: str = "site_veto") -> Path:
    site = tmp_path / "site"
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_bytes(SITE_PLUGIN)
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[console_scripts]\nnot_ours = x:y\n\n# a comment\n[soabi_shim]\nveto = {module} [extra]\n"
    )
    return site


def _run_isolated(code: str, cwd: Path, env_extra: Optional[dict[str, str]] = None) -> str:
    """Run ``code`` with -S (no .pth side effects), soabi_shim and pluggy on the path."""
    import pluggy

    paths = [str(ROOT), os.path.dirname(os.path.dirname(pluggy.__file__))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, *(env_extra or {}).get("EXTRA", "").split(":")]))
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_sites_loads_plugins_from_the_site_only(tmp_path: Path) -> None:
    site = _site_with_plugin(tmp_path)
    # The same module name planted in the current directory and on PYTHONPATH.
    work = tmp_path / "work"
    (work / "site_veto").mkdir(parents=True)
    (work / "site_veto" / "__init__.py").write_bytes(IMPOSTOR)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "site_veto").mkdir(parents=True)
    (elsewhere / "site_veto" / "__init__.py").write_bytes(IMPOSTOR)
    # A plugin distribution on PYTHONPATH but not in the site: never loaded.
    other = _site_with_plugin(tmp_path / "other", "other_veto")
    code = (
        "import sys\n"
        "sys.path.insert(0, '')\n"  # the current directory, as with PYTHONPATH=$PYTHONPATH:/x
        "from soabi_shim.plugins import get_plugin_host\n"
        f"host = get_plugin_host(sites=[{str(site)!r}])\n"
        "names = sorted(n for n, p in host.manager.list_name_plugin() if n != 'builtin')\n"
        "print(names, host.failures)\n"
        "print(sys.modules['site_veto'].ORIGIN, sys.modules['site_veto'].__file__.startswith("
        f"{str(site)!r}))\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = _run_isolated(code, work, {"EXTRA": f"{elsewhere}:{other}"})
    assert out.splitlines() == ["['veto'] []", "site True", "False"], out


def test_sites_refuses_a_module_already_imported_from_elsewhere(tmp_path: Path) -> None:
    site = _site_with_plugin(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "site_veto").mkdir(parents=True)
    (elsewhere / "site_veto" / "__init__.py").write_text("ORIGIN = 'elsewhere'\n")
    code = (
        f"import sys; sys.path.insert(0, {str(elsewhere)!r}); import site_veto\n"
        "from soabi_shim.plugins import get_plugin_host\n"
        f"host = get_plugin_host(sites=[{str(site)!r}])\n"
        "print(host.failures, host.broken)\n"
    )
    out = _run_isolated(code, tmp_path)
    assert "already imported from outside" in out and "['veto']" in out, out


def test_sites_skips_hostile_entry_point_files(tmp_path: Path) -> None:
    from soabi_shim.plugins import MAX_ENTRY_POINTS_FILE, read_entry_points

    site = tmp_path / "site"
    site.mkdir()
    big = site / "big-1.0.dist-info"
    big.mkdir()
    (big / "entry_points.txt").write_text("[soabi_shim]\nbig = big\n" + "#" * MAX_ENTRY_POINTS_FILE)
    fifo = site / "fifo-1.0.dist-info"
    fifo.mkdir()
    os.mkfifo(fifo / "entry_points.txt")  # must not hang
    outside = tmp_path / "outside-1.0.dist-info"
    outside.mkdir()
    (outside / "entry_points.txt").write_text("[soabi_shim]\nout = out\n")
    (site / "outside-1.0.dist-info").symlink_to(outside)
    linked = site / "linked-1.0.dist-info"
    linked.mkdir()
    (linked / "entry_points.txt").symlink_to(outside / "entry_points.txt")
    good = site / "good-1.0.dist-info"
    good.mkdir()
    (good / "entry_points.txt").write_text("[soabi_shim]\ngood = good_mod:plugin\n")
    assert list(read_entry_points([str(site), str(tmp_path / "absent")])) == [(str(site), "good", "good_mod:plugin")]


def test_sites_plugin_failing_to_load_refuses(tmp_path: Path, ext_dir: Path) -> None:
    from soabi_shim.plugins import get_plugin_host

    site = _one_candidate_site(tmp_path, ext_dir)
    dist = site / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[soabi_shim]\nbroken = no_such_module_here\n")
    host = get_plugin_host(sites=[str(site)])
    assert host.failures == [
        ("broken", f"plugin 'broken' failed to load: ImportError: no module named 'no_such_module_here' in {site}")
    ]
    from types import SimpleNamespace

    candidate = SimpleNamespace(path=str(site / "plain" / f"_speed{MUSL_SUFFIX}"), site=str(site))
    facts = SimpleNamespace(elf=None, libc=None)
    assert host.check(candidate, facts) == "plugin 'broken' is broken; nothing is aliased until it is fixed"


def test_sites_plugin_in_a_namespace_package(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme" / "soabi").mkdir(parents=True)  # acme: a namespace package (no __init__.py)
    (site / "acme" / "soabi" / "__init__.py").write_bytes(SITE_PLUGIN)
    dist = site / "acme_soabi-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[soabi_shim]\nacme = acme.soabi\n")
    work = tmp_path / "work"  # the same namespace, with an impostor, in the current directory
    (work / "acme" / "soabi").mkdir(parents=True)
    (work / "acme" / "soabi" / "__init__.py").write_bytes(IMPOSTOR)
    code = (
        "import sys\n"
        "from soabi_shim.plugins import get_plugin_host\n"
        "sys.path.insert(0, '')\n"
        f"host = get_plugin_host(sites=[{str(site)!r}])\n"
        "print(host.failures, sorted(n for n, p in host.manager.list_name_plugin()))\n"
        "print(sys.modules['acme.soabi'].ORIGIN)\n"
        "sys.path.insert(0, '.')\n"  # a later change of sys.path does not widen the namespace
        "print([p.endswith('/site/acme') for p in sys.modules['acme'].__path__])\n"
    )
    assert _run_isolated(code, work).splitlines() == ["[] ['acme', 'builtin']", "site", "[True]"]


# --- the CLI's and the API's cheap look before importlib.metadata ------------


def _dist(parent: Path, name: str, entry_points: Optional[str]) -> Path:
    dist = parent / name
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: x\nVersion: 1\n")
    if entry_points is not None:
        (dist / "entry_points.txt").write_text(entry_points)
    return dist


def test_may_declare_entry_points_only_for_a_group_header(tmp_path: Path) -> None:
    from soabi_shim.plugins import _may_declare_entry_points

    d = tmp_path / "d"
    _dist(d, "none-1.dist-info", None)
    # soabi-shim's own dist-info names the package, not the group.
    _dist(d, "soabi_shim-1.dist-info", "[console_scripts]\nsoabi-shim = soabi_shim.cli:main\n")
    _dist(d, "other-1.egg-info", "[pytest11]\nx = soabi_shim_x\n")
    (d / "not-a-dist.txt").write_text("[soabi_shim]\n")
    path = [str(d), str(tmp_path / "absent"), ""]
    assert _may_declare_entry_points(path) is False
    for i, header in enumerate(["[soabi_shim]", "  [soabi_shim]  ", "[ soabi_shim ]"]):
        e = tmp_path / f"e{i}"
        _dist(e, "acme-1.egg-info" if i else "acme-1.dist-info", f"# c\n{header}\nacme = acme\n")
        assert _may_declare_entry_points([str(d), str(e)]) is True, header


@pytest.mark.parametrize("kind", ["zip", "egg", "unreadable", "big", "finder"])
def test_may_declare_entry_points_defers_what_it_cannot_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from soabi_shim.plugins import MAX_ENTRY_POINTS_FILE, _may_declare_entry_points

    d = tmp_path / "d"
    d.mkdir()
    path = [str(d)]
    if kind == "zip":
        (tmp_path / "x.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
        path.append(str(tmp_path / "x.zip"))
    elif kind == "egg":
        (d / "acme-1.0-py3.11.egg").mkdir()
    elif kind == "unreadable":
        (_dist(d, "acme-1.dist-info", None) / "entry_points.txt").mkdir()
    elif kind == "big":
        _dist(d, "acme-1.dist-info", "#" * (MAX_ENTRY_POINTS_FILE + 1))
    else:

        class Finder:
            @staticmethod
            def find_spec(*args: object) -> None:
                return None

            @staticmethod
            def find_distributions(*args: object) -> list[object]:
                return []

        monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    assert _may_declare_entry_points(path) is True


def test_cli_without_plugins_imports_neither_pluggy_nor_metadata(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from soabi_shim.cli import main\n"
        f"main(['check', '-q', {str(tmp_path)!r}])\n"
        "print('importlib.metadata' in sys.modules, 'pluggy' in sys.modules)\n"
    )
    assert _run_isolated(code, tmp_path).split() == ["False", "False"]
    # A distribution on sys.path declares a plugin: both are used.
    _dist(tmp_path / "plugins", "acme-1.dist-info", "[soabi_shim]\nacme = acme_mod\n")
    (tmp_path / "plugins" / "acme_mod.py").write_text("")
    out = _run_isolated(code, tmp_path, {"EXTRA": str(tmp_path / "plugins")})
    assert out.split() == ["True", "True"]
