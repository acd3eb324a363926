"""The healing start's lean path (issue 13, goal 2) behaves like the full one.

* a plugin host for ``sites=[...]`` with no plugin there runs the built-in
  rules without pluggy, with the same results and the same failure isolation
  as a host with a pluggy manager;
* the start-up heal imports none of the heavy modules;
* ``renameat2`` is bound without importing ``ctypes`` and really exchanges;
* the plain value classes compare, hash, print and refuse assignment like the
  dataclasses they replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from soabi_shim import builtin
from soabi_shim.facts import gather_facts
from soabi_shim.plugins import PluginHost, get_plugin_host
from soabi_shim.report import Alias, Problem, Report
from soabi_shim.suffixes import parse_suffix

ROOT = Path(__file__).resolve().parents[2]


def _hosts(site: Path) -> tuple[PluginHost, PluginHost]:
    """A host with no plugin (no pluggy manager) and one whose manager was made."""
    lean = get_plugin_host(sites=[str(site)])
    full = get_plugin_host(entry_points=False)
    full.manager  # noqa: B018 - builds the pluggy manager
    return lean, full


def test_hosts_have_no_manager_until_asked(tmp_path: Path) -> None:
    for host in (get_plugin_host(sites=[str(tmp_path)]), get_plugin_host(entry_points=False)):
        assert host._manager is None
        # Asking for it builds the plugin set a pluggy host has.
        assert sorted(n for n, _ in host.manager.list_name_plugin()) == ["builtin"]
    assert get_plugin_host([object()], entry_points=False)._manager is not None  # a plugin: pluggy


def test_lean_and_full_hosts_give_the_same_twins(tmp_path: Path) -> None:
    lean, full = _hosts(tmp_path)
    facts = gather_facts()
    for suffix in facts.accepted:
        kwargs = {"accepted": suffix, "facts": facts}
        assert lean.call("soabi_shim_twin_suffixes", **kwargs) == full.call("soabi_shim_twin_suffixes", **kwargs)
    accepted = parse_suffix(".cpython-311-x86_64-linux-gnu.so")
    got = lean.call("soabi_shim_twin_suffixes", accepted=accepted, facts=facts)
    assert got == [[".cpython-311-x86_64-linux-musl.so"]]
    assert lean.call("soabi_shim_report", report=None) == full.call("soabi_shim_report", report=None) == []
    with pytest.raises(AttributeError):
        lean.call("soabi_shim_no_such_hook")
    assert lean._manager is None  # still no pluggy


def test_lean_host_isolates_a_failing_builtin_like_pluggy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lean, full = _hosts(tmp_path)
    monkeypatch.setattr(builtin, "twin_suffixes", lambda s: (_ for _ in ()).throw(MemoryError("again")))
    for host in (lean, full):
        assert host.call("soabi_shim_twin_suffixes", accepted=None, facts=None) == []
        assert host.failures == [("builtin", "plugin 'builtin' raised MemoryError: again")]


def test_lean_host_checks_like_the_full_one(tmp_path: Path) -> None:
    lean, full = _hosts(tmp_path)
    outside = SimpleNamespace(path="/etc/x.so", site=str(tmp_path))
    facts = SimpleNamespace(elf=None, libc="glibc")
    assert lean.check(outside, facts) == full.check(outside, facts) is not None
    junk = tmp_path / "x.so"
    junk.write_bytes(b"not an elf")
    inside = SimpleNamespace(path=str(junk), site=str(tmp_path))
    assert lean.check(inside, facts) == full.check(inside, facts) is not None
    # A real extension of this interpreter passes the built-in rules, and no
    # pluggy was needed to say so.
    import _ctypes

    good = tmp_path / "good.so"
    good.write_bytes(Path(_ctypes.__file__).read_bytes())
    candidate = SimpleNamespace(path=str(good), site=str(tmp_path))
    assert lean.check(candidate, gather_facts()) is None
    assert full.check(candidate, gather_facts()) is None
    assert lean._manager is None


def test_heal_site_imports_nothing_heavy(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "soabi_shim").mkdir(parents=True)
    code = (
        "import sys\n"
        "from soabi_shim._startup import heal_site\n"
        "report = heal_site(sys.argv[1])\n"
        "assert report is not None and not report.problems, report\n"
        "heavy = ('typing', 'dataclasses', 'subprocess', 'pluggy', 'ctypes', 'json', 're', 'csv',\n"
        "         'importlib.metadata', 'inspect', 'contextlib', 'collections', 'sysconfig')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site)], capture_output=True, text=True, env=env, check=False
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "[]\n", "")


def test_renameat2_without_ctypes_exchanges(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    code = (
        "import os, sys\n"
        "from soabi_shim import record\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "print(record._exchange(fd, 'a', fd, 'b'), 'ctypes' in sys.modules)\n"
        "try:\n"
        "    record._exchange(fd, 'missing', fd, 'b')\n"
        "except FileNotFoundError as exc:\n"
        "    print(exc.errno)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert (out.stdout, out.stderr) == ("True False\n2\n", "")
    assert (tmp_path / "a").read_text() == "b"
    assert (tmp_path / "b").read_text() == "a"


def test_plain_value_classes_behave_like_dataclasses() -> None:
    a = Alias(distribution="d", version="1", alias="/a", target="/t", action="created")
    b = Alias("d", "1", "/a", "/t", "created")
    assert a == b and hash(a) == hash(b) and a != Alias("d", "1", "/a", "/t", "present")
    assert repr(a) == "Alias(distribution='d', version='1', alias='/a', target='/t', action='created')"
    with pytest.raises(AttributeError):
        a.alias = "/b"  # type: ignore[misc]
    assert len({Problem("/p", "r"), Problem(path="/p", reason="r")}) == 1
    facts = gather_facts()
    report = Report(command="heal", interpreter=facts)
    assert (report.sites, report.aliases, report.problems, report.distributions) == ([], [], [], 0)
    assert report == Report("heal", facts) and report != Report("check", facts)
    with pytest.raises(TypeError):
        hash(report)
    changed = facts.replace(libc="musl")
    assert changed.libc == "musl" and changed.executable == facts.executable
    with pytest.raises(TypeError):
        facts.replace(no_such_field=1)


def test_light_facts_agree_with_sysconfig(tmp_path: Path) -> None:
    """The hook's facts (``sites=``, no ``sysconfig``) name the same suffix,
    SOABI and extension suffixes as the full probe, and the given sites."""
    import sysconfig

    from soabi_shim.errors import UsageError

    light = gather_facts(sites=[str(tmp_path), str(tmp_path / "missing")])
    full = gather_facts()
    assert light.site_dirs == (str(tmp_path),)
    assert light.ext_suffix == sysconfig.get_config_var("EXT_SUFFIX") == full.ext_suffix
    assert light.soabi == sysconfig.get_config_var("SOABI") == full.soabi
    assert (light.extension_suffixes, light.libc, light.version) == (full.extension_suffixes, full.libc, full.version)
    with pytest.raises(UsageError, match="running interpreter only"):
        gather_facts(sys.executable, sites=[str(tmp_path)])
