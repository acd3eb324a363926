"""_startup.py in process, on fake site directories in ``tmp_path``: the
lock, the stamp, soabi-shim's own RECORD, the heal at start and at exit.

The subprocess tests in tests/integration/test_startup.py prove the hook in a
real interpreter; these reach the same functions in-process, so that the
mutation run (tools/mutation.py) can judge them.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import pytest

from soabi_shim import _startup
from soabi_shim._names import PACKAGE_DIR, PTH_NAME, stamp_name
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX

#: These tests build their extension with the host's gcc (glibc-linked) and name it for
#: musl, the twin of a glibc interpreter's own suffix; on the musl interpreters of the
#: e2e suite (tests/e2e/test_unit_suite.py) that premise does not hold, and the musl
#: e2e tests cover the same paths with real musl wheels.
glibc_host = pytest.mark.skipif(not sys.thread_info.version, reason="needs a glibc interpreter (gcc-built extension)")

OWN = "soabi_shim-1.0.dist-info"


def record_paths(record: Path) -> list[str]:
    return [r[0] for r in csv.reader(io.StringIO(record.read_text(), newline=""))]


def make_site(root: Path, *, own: bool = True, pkg: bool = True) -> Path:
    site = root / "site"
    site.mkdir(parents=True)
    if pkg:
        (site / PACKAGE_DIR).mkdir()
    if own:
        d = site / OWN
        d.mkdir()
        (d / "RECORD").write_text(f"{PTH_NAME},,\n{PACKAGE_DIR}/__init__.py,,\n{OWN}/RECORD,,\n")
        (site / PTH_NAME).write_text("")
    return site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path)


def stamps(site: Path) -> list[str]:
    return sorted(n for n in os.listdir(site / PACKAGE_DIR) if n.startswith(("_ok.", "_fb.")))


def test_own_record_is_the_one_listing_the_hook(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    # another dist-info of ours without the hook row, and an unreadable one, sorting first
    other = site / "soabi_shim-0.9.dist-info"
    other.mkdir()
    (other / "RECORD").write_text(f"{PACKAGE_DIR}/__init__.py,,\n")
    broken = site / "soabi_shim-0.1.dist-info"
    broken.mkdir()
    (broken / "RECORD").mkdir()  # not a file: read_record fails
    (site / "other-1.0.dist-info").mkdir()
    assert _startup._own_record(str(site)) == str(site / OWN / "RECORD")
    assert _startup._own_record(str(make_site(tmp_path / "b", own=False))) is None


def test_own_record_ignores_other_prefixes(tmp_path: Path) -> None:
    site = make_site(tmp_path, own=False)
    d = site / "xsoabi_shim-1.0.dist-info"
    d.mkdir()
    (d / "RECORD").write_text(f"{PTH_NAME},,\n")
    e = site / "soabi_shim-1.0.egg-info"
    e.mkdir()
    (e / "RECORD").write_text(f"{PTH_NAME},,\n")
    assert _startup._own_record(str(site)) is None


def test_lock_is_exclusive(site: Path) -> None:
    fd = _startup._lock(str(site))
    assert fd is not None
    try:
        assert _startup._lock(str(site)) is None
        assert _startup.heal_site(str(site)) is None  # another heal holds the lock
    finally:
        os.close(fd)
    again = _startup._lock(str(site))
    assert again is not None
    os.close(again)


def test_lock_makes_the_package_dir_only_for_our_own_site(tmp_path: Path) -> None:
    ours = make_site(tmp_path / "a", pkg=False)
    fd = _startup._lock(str(ours))
    assert fd is not None
    os.close(fd)
    assert (ours / PACKAGE_DIR).is_dir()
    assert (ours / PACKAGE_DIR).stat().st_mode & 0o777 == 0o755 & ~_umask()
    foreign = make_site(tmp_path / "b", own=False, pkg=False)
    assert _startup._lock(str(foreign)) is None
    assert not (foreign / PACKAGE_DIR).exists()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_lock_refuses_a_symlinked_package_dir(tmp_path: Path) -> None:
    site = make_site(tmp_path, pkg=False)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", site / PACKAGE_DIR)
    with pytest.raises(OSError):
        _startup._lock(str(site))


def test_write_stamp_records_it_and_keeps_the_mtime(site: Path) -> None:
    record = site / OWN / "RECORD"
    mtime = os.stat(site).st_mtime_ns
    before = _startup._dist_infos(str(site))
    path = _startup.write_stamp(str(site), False, before)
    assert path == str(site / PACKAGE_DIR / stamp_name(mtime))
    assert os.path.isfile(path)
    assert f"{PACKAGE_DIR}/{stamp_name(mtime)}" in record_paths(record)
    assert os.stat(site).st_mtime_ns == mtime
    assert _startup.stamp_state(str(site)) == "ok"


def test_write_stamp_with_problems_is_a_fallback_stamp(site: Path) -> None:
    mtime = os.stat(site).st_mtime_ns
    path = _startup.write_stamp(str(site), True, _startup._dist_infos(str(site)))
    assert path == str(site / PACKAGE_DIR / stamp_name(mtime, True))
    assert _startup.stamp_state(str(site)) == "fallback"


def test_write_stamp_replaces_older_stamps_and_rows(site: Path) -> None:
    record = site / OWN / "RECORD"
    first = _startup.write_stamp(str(site), False, _startup._dist_infos(str(site)))
    assert first is not None
    os.utime(site, ns=(0, os.stat(site).st_mtime_ns + 10**9))
    second = _startup.write_stamp(str(site), True, _startup._dist_infos(str(site)))
    assert second is not None and second != first
    assert stamps(site) == [os.path.basename(second)]
    rows = record_paths(record)
    assert f"{PACKAGE_DIR}/{os.path.basename(second)}" in rows
    assert f"{PACKAGE_DIR}/{os.path.basename(first)}" not in rows
    assert PTH_NAME in rows


def test_write_stamp_when_the_name_exists_already(site: Path) -> None:
    mtime = os.stat(site).st_mtime_ns
    (site / PACKAGE_DIR / stamp_name(mtime)).write_bytes(b"")
    os.utime(site, ns=(0, mtime))
    path = _startup.write_stamp(str(site), False, _startup._dist_infos(str(site)))
    assert path == str(site / PACKAGE_DIR / stamp_name(mtime))
    assert os.path.exists(path)


def test_write_stamp_without_our_record_writes_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path, own=False)
    assert _startup.write_stamp(str(site), False, _startup._dist_infos(str(site))) is None
    assert stamps(site) == []


def test_write_stamp_after_an_install_meanwhile_leaves_no_stamp(site: Path) -> None:
    before = _startup._dist_infos(str(site))
    (site / "new-1.0.dist-info").mkdir()
    assert _startup.write_stamp(str(site), False, before) is None
    assert stamps(site) == []
    assert _startup.stamp_state(str(site)) is None


def test_write_stamp_that_cannot_be_created_drops_its_row(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = site / OWN / "RECORD"
    before_rows = record_paths(record)
    mtime = os.stat(site).st_mtime_ns
    real_open = os.open

    def no_space(path: str, flags: int, mode: int = 0o777, **kw: object) -> int:
        if os.path.basename(str(path)).startswith("_ok."):
            raise OSError(28, "No space left on device")
        return real_open(path, flags, mode, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_startup.os, "open", no_space)
    with pytest.raises(OSError):
        _startup.write_stamp(str(site), False, _startup._dist_infos(str(site)))
    monkeypatch.undo()
    assert record_paths(record) == before_rows
    assert os.stat(site).st_mtime_ns == mtime


def test_stamp_state_follows_the_mtime(site: Path) -> None:
    assert _startup.stamp_state(str(site)) is None
    _startup.write_stamp(str(site), False, _startup._dist_infos(str(site)))
    assert _startup.stamp_state(str(site)) == "ok"
    os.utime(site, ns=(0, os.stat(site).st_mtime_ns + 1))
    assert _startup.stamp_state(str(site)) is None


def test_set_mtime(tmp_path: Path) -> None:
    st = os.stat(tmp_path)
    _startup._set_mtime(str(tmp_path), st.st_mtime_ns - 10**9)
    after = os.stat(tmp_path)
    assert after.st_mtime_ns == st.st_mtime_ns - 10**9
    assert after.st_atime_ns == st.st_atime_ns


def test_dist_infos_and_identity(site: Path) -> None:
    (site / "demo-1.0.dist-info").mkdir()
    (site / "demo").mkdir()
    names = {n for n, _ino in _startup._dist_infos(str(site))}
    assert names == {OWN, "demo-1.0.dist-info"}
    ident = {n for n, _ino in _startup._identity(str(site))}
    assert ident == {OWN, PACKAGE_DIR, PTH_NAME}


@pytest.fixture
def healable(site: Path, ext_dir: Path) -> Path:
    if not sys.thread_info.version:
        pytest.skip("needs a glibc interpreter (gcc-built extension named for musl)")
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    (site / "demo").mkdir()
    (site / "demo" / f"_speed{MUSL_SUFFIX}").write_bytes(so)
    d = site / "demo-1.0.dist-info"
    d.mkdir()
    (d / "RECORD").write_text(f"demo/_speed{MUSL_SUFFIX},,\n{d.name}/RECORD,,\n")
    return site


def test_heal_site_heals_and_stamps(healable: Path) -> None:
    report = _startup.heal_site(str(healable))
    assert report is not None and report.problems == []
    alias = healable / "demo" / f"_speed{EXT_SUFFIX}"
    assert os.readlink(alias) == f"./_speed{MUSL_SUFFIX}"
    assert f"demo/_speed{EXT_SUFFIX}" in record_paths(healable / "demo-1.0.dist-info" / "RECORD")
    assert _startup.stamp_state(str(healable)) == "ok"


def test_heal_site_runs_the_pipeline_on_its_site_with_light_facts(
    healable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One site, its own plugins, and facts gathered for that site only
    (no ``sysconfig``: ``site_dirs`` is the site itself)."""
    from soabi_shim import facts, pipeline, plugins

    seen: dict[str, object] = {}
    real_run, real_facts, real_host = pipeline.run, facts.gather_facts, plugins.get_plugin_host

    def gather(*args: object, **kwargs: object) -> object:
        seen["facts_kwargs"] = kwargs
        return real_facts(*args, **kwargs)  # type: ignore[arg-type]

    def host(*args: object, **kwargs: object) -> object:
        seen["host_kwargs"] = kwargs
        return real_host(*args, **kwargs)  # type: ignore[arg-type]

    def run(command: str, paths: object = None, **kwargs: object) -> object:
        seen["command"], seen["paths"], seen["facts"] = command, paths, kwargs.get("facts")
        return real_run(command, paths, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(facts, "gather_facts", gather)
    monkeypatch.setattr(plugins, "get_plugin_host", host)
    monkeypatch.setattr(pipeline, "run", run)
    report = _startup.heal_site(str(healable))
    assert report is not None and report.problems == []
    assert (seen["command"], seen["paths"]) == ("heal", [str(healable)])
    assert seen["facts_kwargs"] == {"sites": [str(healable)]}
    assert seen["host_kwargs"] == {"sites": [str(healable)]}
    assert seen["facts"].site_dirs == (str(healable),)  # type: ignore[attr-defined]


def test_heal_start_heals_without_fallback(healable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_startup, "install_fallback", lambda: calls.append(1) or True)
    _startup.heal_start(str(healable))
    assert calls == []
    assert os.path.islink(healable / "demo" / f"_speed{EXT_SUFFIX}")


def test_heal_start_falls_back_when_the_heal_fails(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_startup, "install_fallback", lambda: calls.append(1) or True)

    def boom(sitedir: str) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(_startup, "heal_site", boom)
    _startup.heal_start(str(site))  # never raises
    assert calls == [1]
    monkeypatch.setattr(_startup, "heal_site", lambda s: None)  # another process heals
    _startup.heal_start(str(site))
    assert calls == [1, 1]


def test_heal_start_never_raises_even_from_the_fallback(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(_startup, "heal_site", boom)
    monkeypatch.setattr(_startup, "install_fallback", boom)
    _startup.heal_start(str(site))


def test_heal_start_lets_keyboard_interrupt_through(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*a: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_startup, "heal_site", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _startup.heal_start(str(site))
    monkeypatch.setattr(_startup, "heal_site", lambda s: None)
    monkeypatch.setattr(_startup, "install_fallback", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _startup.heal_start(str(site))


def test_heal_at_exit_registers_once_and_heals_what_changed(healable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[object] = []
    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    monkeypatch.setattr("atexit.register", lambda f: registered.append(f))
    asked: list[str] = []

    def may_heal(s: str) -> bool:
        asked.append(s)
        return True

    _startup.heal_at_exit(str(healable), may_heal)
    _startup.heal_at_exit(str(healable), may_heal)
    assert len(_startup.EXIT_SITES) == 1
    assert registered == [_startup._exit_heal]
    # nothing changed and no stamp: the stale stamp alone is a reason to heal
    _startup._exit_heal()
    assert asked == [str(healable)]
    assert os.path.islink(healable / "demo" / f"_speed{EXT_SUFFIX}")
    # healed and stamped now, nothing changed since: not even asked
    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    _startup.heal_at_exit(str(healable), may_heal)
    _startup._exit_heal()
    assert asked == [str(healable)]
    # a distribution came: asked again
    (healable / "new-1.0.dist-info").mkdir()
    _startup._exit_heal()
    assert asked == [str(healable)] * 2


def test_exit_heal_leaves_a_site_whose_soabi_shim_changed(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    monkeypatch.setattr("atexit.register", lambda f: None)
    asked: list[str] = []
    _startup.heal_at_exit(str(site), lambda s: asked.append(s) or True)
    (site / OWN).rename(site / "soabi_shim-2.0.dist-info")
    (site / "x-1.0.dist-info").mkdir()
    _startup._exit_heal()
    assert asked == []


def test_exit_heal_respects_may_heal_and_never_raises(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    monkeypatch.setattr("atexit.register", lambda f: None)
    healed: list[str] = []
    monkeypatch.setattr(_startup, "heal_site", lambda s: healed.append(s))
    _startup.heal_at_exit(str(site), lambda s: False)
    _startup._exit_heal()
    assert healed == []

    def boom(s: str) -> bool:
        raise RuntimeError("x")

    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    _startup.heal_at_exit(str(site), boom)
    _startup._exit_heal()  # swallowed

    def interrupt(s: str) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    _startup.heal_at_exit(str(site), interrupt)
    with pytest.raises(KeyboardInterrupt):
        _startup._exit_heal()


def test_module_getattr() -> None:
    assert isinstance(_startup.FALLBACK_INSTALLED, bool)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _startup.nope  # noqa: B018


@pytest.fixture
def umask0() -> object:
    old = os.umask(0)
    yield
    os.umask(old)


def test_lock_dir_and_stamp_modes(tmp_path: Path, umask0: object) -> None:
    site = make_site(tmp_path, pkg=False)
    fd = _startup._lock(str(site))
    assert fd is not None
    os.close(fd)
    assert (site / PACKAGE_DIR).stat().st_mode & 0o777 == 0o755
    path = _startup.write_stamp(str(site), False, _startup._dist_infos(str(site)))
    assert path is not None
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_lock_refuses_a_regular_file_as_package_dir(tmp_path: Path) -> None:
    site = make_site(tmp_path, pkg=False)
    (site / PACKAGE_DIR).write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        _startup._lock(str(site))


def test_heal_start_falls_back_when_the_heal_left_problems(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Report:
        problems = (("x", "y"),)

    calls: list[int] = []
    monkeypatch.setattr(_startup, "install_fallback", lambda: calls.append(1) or True)
    monkeypatch.setattr(_startup, "heal_site", lambda s: Report())
    _startup.heal_start(str(site))
    assert calls == [1]


@glibc_host
def test_heal_site_with_problems_writes_a_fallback_stamp(site: Path) -> None:
    (site / "demo").mkdir()
    (site / "demo" / f"_speed{MUSL_SUFFIX}").write_bytes(b"not an ELF")
    d = site / "demo-1.0.dist-info"
    d.mkdir()
    (d / "RECORD").write_text(f"demo/_speed{MUSL_SUFFIX},,\n{d.name}/RECORD,,\n")
    report = _startup.heal_site(str(site))
    assert report is not None and report.problems
    assert _startup.stamp_state(str(site)) == "fallback"


def test_exit_heal_goes_on_after_an_unchanged_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_startup, "EXIT_SITES", [])
    monkeypatch.setattr("atexit.register", lambda f: None)
    healed: list[str] = []
    monkeypatch.setattr(_startup, "heal_site", lambda s: healed.append(s))
    moved = make_site(tmp_path / "moved")  # soabi-shim upgraded there: skipped
    stamped = make_site(tmp_path / "stamped")  # nothing changed, stamp fresh: skipped
    changed = make_site(tmp_path / "changed")
    for s in (moved, stamped, changed):
        _startup.heal_at_exit(str(s), lambda s: True)
    (moved / OWN).rename(moved / "soabi_shim-2.0.dist-info")
    _startup.write_stamp(str(stamped), False, _startup._dist_infos(str(stamped)))
    (changed / "new-1.0.dist-info").mkdir()
    _startup._exit_heal()
    assert healed == [str(changed)]


def test_import_pipeline_looks_in_the_site_dirs_and_puts_sys_path_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import site as site_module
    import sys

    from soabi_shim import pipeline, plugins

    base, user, missing, known = (tmp_path / n for n in ("base", "user", "missing", "known"))
    for d in (base, user, known):
        d.mkdir()
    monkeypatch.syspath_prepend(str(known))
    seen: list[list[str]] = []

    class Once:
        """Fail the first import of soabi_shim.pipeline, as before site ran."""

        failed = False

        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "soabi_shim.pipeline":
                seen.append(list(sys.path))
                if not Once.failed:
                    Once.failed = True
                    raise ImportError("not yet")
            return None

    import soabi_shim

    monkeypatch.setattr(soabi_shim, "pipeline", pipeline)  # put back after the re-import
    monkeypatch.delitem(sys.modules, "soabi_shim.pipeline")
    monkeypatch.setattr(sys, "meta_path", [Once(), *sys.meta_path])
    monkeypatch.setattr(site_module, "getsitepackages", lambda: [str(base), str(missing), str(known)])
    monkeypatch.setattr(site_module, "ENABLE_USER_SITE", True)
    monkeypatch.setattr(site_module, "getusersitepackages", lambda: str(user))
    before = list(sys.path)
    run, host = _startup._import_pipeline()
    assert sys.path == before
    assert run.__name__ == pipeline.run.__name__ and host is plugins.get_plugin_host
    assert len(seen) == 2
    added = seen[1][len(before) :]
    assert added == [str(base), str(user)]


def test_import_pipeline_without_site_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    import site as site_module
    import sys

    def broken() -> list[str]:
        raise AttributeError("no getsitepackages in this venv")

    monkeypatch.setitem(sys.modules, "soabi_shim.pipeline", None)
    monkeypatch.setattr(site_module, "getsitepackages", broken)
    with pytest.raises(ImportError, match=r"^soabi-shim's dependencies are not importable$"):
        _startup._import_pipeline()
