"""The start-up hook and import fallback, on this glibc machine.

On glibc the ``.pth`` line must do nothing visible and import nothing.  Its
musl behaviour is driven here through :mod:`tests.startup_sim`, which runs
the *shipped* line exactly as ``site`` does but makes the libc decision say
musl; the real musl interpreters run it in ``tests/e2e``.
"""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from soabi_shim._names import PTH_NAME, START_NAME, stamp_name
from soabi_shim._startup import PTH_LINE, START_LINE
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, Venv, make_venv, make_wheel
from tests.startup_sim import sim_code

HEAVY = ("typing", "pluggy", "packaging", "sysconfig", "importlib.metadata", "dataclasses", "subprocess")
PROBE = f"import sys; print(sorted(m for m in sys.modules if 'soabi' in m or m in {HEAVY!r}))"
SOABI_MODULES = "print(sorted(m for m in sys.modules if m.startswith('soabi_shim')))"


def test_shipped_hook_files_match_source() -> None:
    assert (ROOT / "hook" / PTH_NAME).read_text() == PTH_LINE
    assert (ROOT / "hook" / START_NAME).read_text() == START_LINE
    assert PTH_LINE.startswith("import ") and PTH_LINE.count("\n") == 1
    assert len(PTH_LINE) < 300  # compiled at every start, twice in a venv
    compile(PTH_LINE, "soabi_shim-startup.pth", "exec")


@pytest.fixture
def shim_venv(tmp_path: Path, shim_wheel: Path) -> Venv:
    v = make_venv(tmp_path / "venv", "--system-site-packages")
    v.pip("install", "--no-deps", str(shim_wheel))
    assert (v.site / PTH_NAME).is_file()
    return v


def sim(v: Venv, after: str = "", *, sites: list[Path] | None = None, flags: tuple[str, ...] = (), **kw: object):
    code = sim_code(str(v.site / PTH_NAME), [str(s) for s in (sites or [v.site])], after=after, **kw)  # type: ignore[arg-type]
    return subprocess.run([str(v.python), *flags, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def stamps(site: Path) -> list[str]:
    return sorted(n for n in os.listdir(site / "soabi_shim") if n.startswith(("_ok.", "_fb.")))


def record_rows(site: Path, dist: str = "soabi_shim-") -> list[str]:
    (record,) = site.glob(f"{dist}*.dist-info/RECORD")
    with open(record, newline="") as f:
        return [r[0] for r in csv.reader(f)]


def test_glibc_startup_is_silent_and_imports_nothing(tmp_path: Path, shim_venv: Venv) -> None:
    plain = make_venv(tmp_path / "plain", "--system-site-packages")
    for flags in ((), ("-X", "dev"), ("-W", "error"), ("-v",)):
        a = shim_venv.run("pass", flags=flags)
        b = plain.run("pass", flags=flags)
        assert a.returncode == b.returncode == 0
        assert a.stdout == b.stdout
        if flags != ("-v",):  # -v lists paths, which differ between the venvs
            assert a.stderr == b.stderr
    assert shim_venv.run(PROBE).stdout == plain.run(PROBE).stdout
    assert "soabi" not in shim_venv.run(PROBE).stdout
    assert not list((shim_venv.site / "soabi_shim").glob("_ok.*"))  # glibc writes nothing


def test_heal_at_start_then_fast_path(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    site = shim_venv.site
    first = sim(
        shim_venv,
        "print(sorted(set(sys.modules) - _base))\nimport demo._speed as m; print(m.add(1, 2))",
        before="_base = set(sys.modules)",
    )
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    added, three = first.stdout.splitlines()
    assert three == "3"
    assert (site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    mtime = os.stat(site).st_mtime_ns
    assert stamps(site) == [stamp_name(mtime)]  # named for the mtime as it is now
    assert f"soabi_shim/{stamp_name(mtime)}" in record_rows(site)
    # A healing start imports no importlib.metadata (no plugin installed) and no fallback.
    assert "importlib.metadata" not in added and "soabi_shim.fallback" not in added

    # Nothing changed: both passes stop in the line, nothing is imported, nothing written.
    again = sim(shim_venv, SOABI_MODULES, flags=("-X", "dev", "-W", "error"))
    assert (again.stdout, again.stderr) == ("[]\n", "")
    assert os.stat(site).st_mtime_ns == mtime and stamps(site) == [stamp_name(mtime)]

    # A new install changes the mtime: healed again, the old stamp and its row are gone.
    (site / "newdist-1.0.dist-info").mkdir()
    (site / "newdist-1.0.dist-info" / "RECORD").write_text("newdist-1.0.dist-info/RECORD,,\n")
    third = sim(shim_venv, SOABI_MODULES)
    assert third.stderr == "" and "soabi_shim._startup" in third.stdout
    new = os.stat(site).st_mtime_ns
    assert new != mtime and stamps(site) == [stamp_name(new)]
    rows = record_rows(site)
    assert f"soabi_shim/{stamp_name(new)}" in rows and f"soabi_shim/{stamp_name(mtime)}" not in rows

    # Uninstalling soabi-shim removes the hook files, the stamp and the package directory.
    shim_venv.pip("uninstall", "-y", "soabi-shim")
    assert not (site / PTH_NAME).exists() and not (site / START_NAME).exists()
    assert not (site / "soabi_shim").exists()
    assert shim_venv.run("import demo._speed").returncode == 0  # the alias stays valid
    shim_venv.pip("uninstall", "-y", "demo")
    assert not (site / "demo").exists()


def test_problems_stamp_installs_the_fallback_only(shim_venv: Venv, ext_dir: Path, tmp_path: Path) -> None:
    bad = bytearray((ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes())
    bad[18:20] = (183).to_bytes(2, "little")  # aarch64: refused, a problem
    wheel = make_wheel(
        tmp_path / "w", "armdist", "1.0", {"armmod/__init__.py": b"", f"armmod/_speed{MUSL_SUFFIX}": bytes(bad)}
    )
    shim_venv.pip("install", str(wheel))
    site = shim_venv.site
    first = sim(shim_venv)
    assert (first.returncode, first.stderr) == (0, "")
    mtime = os.stat(site).st_mtime_ns
    assert stamps(site) == [stamp_name(mtime, problems=True)]
    # Next start: the fallback only; no heal module, nothing written.
    nxt = sim(shim_venv, SOABI_MODULES + "\nimport soabi_shim.fallback as f; print(f.INSTALLED)")
    assert nxt.stderr == ""
    modules = ["soabi_shim", "soabi_shim._names", "soabi_shim._start", "soabi_shim._twins", "soabi_shim.fallback"]
    assert nxt.stdout == f"{modules}\nTrue\n"
    assert os.stat(site).st_mtime_ns == mtime


def test_fallback_only_env_writes_nothing(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    site = shim_venv.site
    mtime = os.stat(site).st_mtime_ns
    code = sim_code(str(site / PTH_NAME), [str(site)], after="import demo._speed as m; print(m.add(1, 2))")
    env = dict(os.environ, SOABI_SHIM_FALLBACK_ONLY="1")
    out = subprocess.run([str(shim_venv.python), "-c", code], capture_output=True, text=True, env=env, check=False)
    assert (out.stdout, out.stderr) == ("3\n", "")
    assert not (site / "demo" / f"_speed{EXT_SUFFIX}").exists()
    assert stamps(site) == [] and os.stat(site).st_mtime_ns == mtime
    env = dict(os.environ, SOABI_SHIM_DISABLE="1")
    out = subprocess.run(
        [str(shim_venv.python), "-c", sim_code(str(site / PTH_NAME), [str(site)], after=SOABI_MODULES)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (out.stdout, out.stderr) == ("['soabi_shim', 'soabi_shim._names', 'soabi_shim._start']\n", "")


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink-out"])
def test_special_file_at_the_stamp_path(shim_venv: Venv, tmp_path: Path, kind: str) -> None:
    """A FIFO, a directory or a symlink where the stamp goes: no hang, no
    output, no write through it, and not a heal at every start."""
    site = shim_venv.site
    outside = tmp_path / "outside"
    outside.write_text("precious")
    first = sim(shim_venv)  # heals (nothing to do) and stamps
    assert first.stderr == ""
    mtime = os.stat(site).st_mtime_ns
    (name,) = stamps(site)
    path = site / "soabi_shim" / name
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(outside)
    for flags in ((), ("-X", "dev", "-W", "error")):
        out = sim(shim_venv, SOABI_MODULES, flags=flags)
        assert (out.returncode, out.stdout, out.stderr) == (0, "[]\n", "")
    assert os.stat(site).st_mtime_ns == mtime
    assert outside.read_text() == "precious"


def test_stamp_never_written_through_a_planted_symlink(shim_venv: Venv, tmp_path: Path) -> None:
    site = shim_venv.site
    outside = tmp_path / "outside"
    outside.write_text("precious")
    code = (
        "import os, soabi_shim._startup as s\n"
        f"site = {str(site)!r}\n"
        "name = s.stamp_name(os.stat(site).st_mtime_ns)\n"
        f"os.symlink({str(outside)!r}, os.path.join(site, 'soabi_shim', name))\n"
        "before = s._dist_infos(site)\n"
        "s.write_stamp(site, False, before)\n"
        "print(os.path.islink(os.path.join(site, 'soabi_shim', name)))\n"
    )
    out = shim_venv.run(code)
    assert (out.stdout, out.stderr) == ("True\n", "")
    assert outside.read_text() == "precious"
    outside.chmod(0o600)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600


def test_full_disk_leaves_no_stamp_row_or_stray(shim_venv: Venv) -> None:
    site = shim_venv.site
    code = (
        "import errno, os, soabi_shim._startup as s\n"
        "real = os.open\n"
        "def full(path, flags, *a, **k):\n"
        "    if '/_ok.' in str(path) and flags & os.O_CREAT:\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    return real(path, flags, *a, **k)\n"
        "os.open = full\n"
        f"site = {str(site)!r}\n"
        "try:\n"
        "    s.write_stamp(site, False, s._dist_infos(site))\n"
        "except OSError as e:\n"
        "    print(e.errno == errno.ENOSPC)\n"
    )
    mtime = os.stat(site).st_mtime_ns
    out = shim_venv.run(code)
    assert (out.stdout, out.stderr) == ("True\n", "")
    assert stamps(site) == []
    assert not [r for r in record_rows(site) if "/_ok." in r]
    assert os.stat(site).st_mtime_ns == mtime
    assert not [n for n in os.listdir(site) if n.startswith(".")]  # no temporary file left
    shim_venv.pip("uninstall", "-y", "soabi-shim")
    assert not site.exists() or not [n for n in os.listdir(site) if "soabi" in n]


def test_system_site_packages_each_site_heals_its_own(tmp_path: Path, shim_wheel: Path, demo_wheel: Path) -> None:
    """soabi-shim in a base environment and in a ``--system-site-packages``
    venv on top; its dependencies only in the base.  Each hook heals its own
    site directory, even while the base site is not on ``sys.path`` yet."""
    base = make_venv(tmp_path / "base", "--system-site-packages")  # pluggy & co. come from the host
    base.pip("install", "--no-deps", str(shim_wheel), str(demo_wheel))
    top = make_venv(tmp_path / "top", "--system-site-packages")
    top.pip("install", "--no-deps", str(shim_wheel), str(demo_wheel))
    # The venv's site is processed before the base site is on sys.path: hide
    # the host's site-packages (which holds soabi-shim's dependencies) the same way.
    host_sites = [p for p in sys.path if p.endswith("site-packages") and "venv" not in p]
    before = f"sys.path[:] = [p for p in sys.path if p not in {host_sites!r}]"
    code = sim_code(
        str(top.site / PTH_NAME),
        [str(top.site), str(base.site)],
        before=before,
        after="import soabi_shim._startup as s; print(s.stamp_state(_site))",
    )
    out = subprocess.run([str(top.python), "-c", code], capture_output=True, text=True, check=False)
    assert out.stderr == ""
    for v in (top, base):
        assert (v.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink(), v.site
        assert stamps(v.site) == [stamp_name(os.stat(v.site).st_mtime_ns)]


PIP_IN_PROCESS = """
import sys, runpy
sys.argv[:] = [{script!r}, "install", "--no-deps", "--disable-pip-version-check", "-q", *{args!r}]
try:
    runpy.run_module("pip", run_name="__main__", alter_sys=True)
except SystemExit as e:
    print("pip exit", e.code)
    sys.exit(e.code)
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_heal_at_pip_exit(shim_venv: Venv, demo_wheel: Path, how: str) -> None:
    """Inside pip the hook only registers an exit handler; when pip returns
    the alias is on disk and recorded, the stamp is current, and pip's output
    and exit status are its own."""
    site = shim_venv.site
    sim(shim_venv)  # stamp current before pip starts: the line's fast path would stop without the pip test
    argv = [str(shim_venv.root / "bin" / "pip3.11")] if how == "script" else ["-m"]
    after = PIP_IN_PROCESS.format(script=argv[0], args=[str(demo_wheel)])
    before = "sys.orig_argv[:] = [sys.executable, '-m', 'pip', 'install']" if how == "module" else ""
    out = sim(shim_venv, after, argv=argv, passes=1, before=before)
    assert (out.returncode, out.stdout, out.stderr) == (0, "pip exit 0\n", ""), out.stderr
    link = site / "demo" / f"_speed{EXT_SUFFIX}"
    assert link.is_symlink()
    assert f"demo/_speed{EXT_SUFFIX}" in record_rows(site, "demo-")
    assert stamps(site) == [stamp_name(os.stat(site).st_mtime_ns)]
    # The next start writes nothing and imports nothing.
    nxt = sim(shim_venv, SOABI_MODULES)
    assert (nxt.stdout, nxt.stderr) == ("[]\n", "")


def test_pip_uninstalling_soabi_shim_leaves_the_exit_handler_silent(shim_venv: Venv, demo_wheel: Path) -> None:
    site = shim_venv.site
    shim_venv.pip("install", str(demo_wheel))
    after = PIP_IN_PROCESS.format(script=str(shim_venv.root / "bin" / "pip"), args=[]).replace(
        '"install", "--no-deps",', '"uninstall", "-y", "soabi-shim",'
    )
    out = sim(shim_venv, after, argv=[str(shim_venv.root / "bin" / "pip")], passes=1)
    assert (out.returncode, out.stdout, out.stderr) == (0, "pip exit 0\n", ""), out.stderr
    assert not (site / "soabi_shim").exists()
    assert not (site / "demo" / f"_speed{EXT_SUFFIX}").exists()  # nothing healed by a half-removed shim


def test_pip_reinstalling_soabi_shim_leaves_the_work_to_the_next_start(
    shim_venv: Venv, demo_wheel: Path, shim_wheel: Path
) -> None:
    """pip replaced soabi-shim's own files in this process: the exit handler
    does nothing (the modules in memory are the old ones); the next start heals."""
    site = shim_venv.site
    shim_venv.pip("install", str(demo_wheel))
    pip = str(shim_venv.root / "bin" / "pip")
    after = PIP_IN_PROCESS.format(script=pip, args=["--force-reinstall", str(shim_wheel)])
    out = sim(shim_venv, after, argv=[pip], passes=1)
    assert (out.returncode, out.stdout, out.stderr) == (0, "pip exit 0\n", ""), out.stderr
    assert not (site / "demo" / f"_speed{EXT_SUFFIX}").exists()
    nxt = sim(shim_venv)
    assert nxt.stderr == "" and (site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()


def test_pep829_entry_point(shim_venv: Venv, demo_wheel: Path) -> None:
    """Driven as PEP 829 says: resolve the ``.start`` line with
    ``pkgutil.resolve_name``, call it with no arguments, after the path lines;
    it finds its site from ``__file__``, runs once, heals, and the next start's
    entry point stops at the stamp."""
    shim_venv.pip("install", str(demo_wheel))
    site = shim_venv.site
    line = (site / START_NAME).read_text().strip()
    code = (
        "import pkgutil, sys\n"
        f"fn = pkgutil.resolve_name({line!r})\n"
        "sys.modules['soabi_shim._start'].is_musl = lambda: True\n"
        "fn(); fn()\n" + SOABI_MODULES
    )
    out = shim_venv.run(code, flags=("-X", "dev", "-W", "error"))
    assert out.stderr == "" and "soabi_shim._startup" in out.stdout
    assert (site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    assert stamps(site) == [stamp_name(os.stat(site).st_mtime_ns)]
    again = shim_venv.run(code)
    assert (again.stdout, again.stderr) == ("['soabi_shim', 'soabi_shim._names', 'soabi_shim._start']\n", "")


def test_editable_install_heals_and_stamps(tmp_path: Path, demo_wheel: Path) -> None:
    v = make_venv(tmp_path / "venv", "--system-site-packages")
    # hatchling's editable build needs ``editables``: with build isolation pip fetches it.
    made = v.pip("install", "--no-deps", "-e", str(ROOT), check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot build the editable wheel here: {made.stderr.strip().splitlines()[-1:]}")
    assert not (v.site / "soabi_shim").exists()  # the package stays in the checkout
    v.pip("install", str(demo_wheel))
    assert (v.site / PTH_NAME).read_text() == PTH_LINE
    out = sim(v)
    assert out.stderr == ""
    assert (v.site / "demo" / f"_speed{EXT_SUFFIX}").is_symlink()
    assert stamps(v.site) == [stamp_name(os.stat(v.site).st_mtime_ns)]
    assert (sim(v, SOABI_MODULES).stdout, sim(v).stderr) == ("[]\n", "")
    v.pip("uninstall", "-y", "soabi-shim")
    assert not (v.site / "soabi_shim").exists()


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["python", "-m", "pip", "install"], "pip"),
        (["python", "-Im", "pip"], "pip"),
        (["python", "-mpip"], "pip"),
        (["python", "-X", "dev", "-W", "error", "-m", "installer", "x.whl"], "installer"),
        (["python", "-Wignore", "-m", "pip"], "pip"),
        (["python", "-c", "import pip", "-m", "pip"], None),
        (["python", "script.py", "-m", "pip"], None),
        (["python", "-m"], None),
    ],
)
def test_module_of_command_line(argv: list[str], module: str | None) -> None:
    from soabi_shim._start import _module_of

    assert _module_of(argv) == module


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/v/bin/pip", True),
        ("/v/bin/pip3", True),
        ("/v/bin/pip3.11", True),
        ("/x/pip/__pip-runner__.py", True),
        ("/v/bin/pipx", False),
        ("/pipelines/app.py", False),
        ("-c", False),
        ("", False),
    ],
)
def test_installer_scripts(argv0: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from soabi_shim import _start

    monkeypatch.setattr(sys, "argv", [argv0])
    assert _start._installer() is expected


def test_fallback_imports_twin_with_real_file_name(shim_venv: Venv, demo_wheel: Path) -> None:
    shim_venv.pip("install", str(demo_wheel))
    (shim_venv.site / "demo" / "_speed").mkdir()  # a same-named directory must not win
    code = (
        "try:\n import demo.nothing\nexcept ImportError:\n pass\n"  # demo/'s finder is cached before
        "import soabi_shim.fallback as f; assert f.install()\n"
        "import demo._speed as m\n"
        "print(m.add(40, 2), m.__file__ == m.__spec__.origin, m.__file__.endswith('-linux-musl.so'))\n"
        "print(sorted(x for x in sys.modules if x.startswith('soabi_shim') or x == 'struct'))"
    )
    out = shim_venv.run(
        "import sys\nbase = set(sys.modules)\n"
        + code.replace("x for x in sys.modules", "x for x in set(sys.modules) - base")
    )
    # This host's gcc links glibc with symbol versions, which the small header
    # reader leaves to the full ELF reader (musl's extensions have none: see
    # tests/unit/test_fallback.py); nothing heavier comes in.
    modules = "['soabi_shim', 'soabi_shim._twins', 'soabi_shim.elf', 'soabi_shim.errors', 'soabi_shim.fallback']"
    assert out.stdout == f"42 True True\n{modules}\n", out.stderr
    assert not (shim_venv.site / "demo" / f"_speed{EXT_SUFFIX}").exists()  # the fallback writes nothing


def test_fallback_refuses_foreign_architecture(shim_venv: Venv, ext_dir: Path) -> None:
    bad = bytearray((ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes())
    bad[18:20] = (183).to_bytes(2, "little")
    (shim_venv.site / "armmod").mkdir()
    (shim_venv.site / "armmod" / "__init__.py").write_text("")
    (shim_venv.site / "armmod" / f"_speed{MUSL_SUFFIX}").write_bytes(bytes(bad))
    code = (
        "import soabi_shim.fallback as f; f.install()\n"
        "try:\n import armmod._speed\nexcept ImportError as e:\n print(e)\n"
    )
    out = shim_venv.run(code)
    assert "soabi-shim refused" in out.stdout and "ELF for aarch64 64-bit" in out.stdout, out.stdout + out.stderr


def test_fallback_refuses_a_fifo_promptly(shim_venv: Venv) -> None:
    pkg = shim_venv.site / "fifomod"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    os.mkfifo(pkg / f"_x{MUSL_SUFFIX}")
    code = (
        "import soabi_shim.fallback as f; f.install()\n"
        f"print(f.check({str(pkg / f'_x{MUSL_SUFFIX}')!r}))\n"
        "try:\n import fifomod._x\nexcept ImportError as e:\n print(type(e).__name__)\n"
    )
    out = subprocess.run([str(shim_venv.python), "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout == "cannot read: not a regular file\nModuleNotFoundError\n", out.stdout + out.stderr
