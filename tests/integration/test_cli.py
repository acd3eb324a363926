"""The command line in-process (``cli.main(argv, out=, err=)``): the messages
for common mistakes, what ``check`` covers, what ``doctor`` says, and the one
map from errors to exit codes."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soabi_shim import _names, _probe, cli
from soabi_shim.errors import InterpreterError, RecordError, SoabiShimError, UsageError
from soabi_shim.facts import gather_facts
from soabi_shim.report import Alias, Problem, Report
from tests.conftest import EXT_SUFFIX, MUSL_SUFFIX, ROOT, Venv


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def make_site(tmp_path: Path, ext_dir: Path, *, owned: bool = True, loose: bool = False) -> Path:
    """A site dir with ``demo 1.0`` (its extension in RECORD when ``owned``) and,
    with ``loose``, an extension no RECORD lists."""
    site = tmp_path / "site-packages"
    so = (ext_dir / f"_speed{MUSL_SUFFIX}").read_bytes()
    (site / "demo").mkdir(parents=True)
    (site / "demo/__init__.py").write_text("")
    dist = site / "demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    rows = ["demo/__init__.py,,", "demo-1.0.dist-info/METADATA,,", "demo-1.0.dist-info/RECORD,,"]
    if owned:
        (site / f"demo/_speed{MUSL_SUFFIX}").write_bytes(so)
        rows.append(f"demo/_speed{MUSL_SUFFIX},,{len(so)}")
    (dist / "RECORD").write_text("\n".join(rows) + "\n")
    if loose:
        (site / "loose").mkdir()
        (site / f"loose/_speed{MUSL_SUFFIX}").write_bytes(so)
    return site


def assert_one_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("ERROR ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


# --------------------------------------------------------------------------
# Messages for common mistakes
# --------------------------------------------------------------------------


def test_no_command_prints_usage_and_a_help_hint() -> None:
    code, out, err = run()
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith("usage: soabi-shim")
    assert_one_error(err, "no COMMAND", "--help")


def test_unknown_option_is_one_line_with_a_hint() -> None:
    code, _, err = run("heal", "--frobnicate")
    assert code == 2
    assert len(err.splitlines()) == 1
    assert_one_error(err, "--frobnicate", "--help")


NOT_PYTHON = ["/bin/sh", "/bin/true", "", "/usr/bin/perl", "/etc/hostname", "/"]


@pytest.mark.parametrize("exe", NOT_PYTHON)
@pytest.mark.parametrize("command", ["heal", "check", "doctor"])
def test_python_that_is_not_python(exe: str, command: str, tmp_path: Path) -> None:
    if exe and not os.path.exists(exe):
        pytest.skip(f"{exe} is not on this machine")
    code, out, err = run(command, "--python", exe, str(tmp_path))
    assert code == 2 and out == ""
    assert_one_error(err, "is not a Python interpreter")


def test_python_that_does_not_exist(tmp_path: Path) -> None:
    code, _, err = run("check", "--python", str(tmp_path / "python9"))
    assert code == 2
    assert_one_error(err, "no such file")


def test_json_errors_are_a_json_object_on_stdout() -> None:
    code, out, err = run("check", "--json", "--python", "/bin/true")
    assert code == 2
    data = json.loads(out)
    assert data["error"].startswith("/bin/true is not a Python interpreter")
    assert data["exit_code"] == 2
    assert_one_error(err, "/bin/true")


def test_package_directory_instead_of_site_packages(tmp_path: Path, ext_dir: Path) -> None:
    site = make_site(tmp_path, ext_dir)
    code, out, _ = run("check", str(site / "demo"))
    assert code == 1
    assert "no *.dist-info here" in out
    assert "1 other problem" in out
    assert "no aliases needed" not in out


def test_summary_agrees_with_the_problem_lines(tmp_path: Path, ext_dir: Path) -> None:
    site = make_site(tmp_path, ext_dir)
    (site / f"demo/_speed{MUSL_SUFFIX}").write_bytes(b"not an ELF file at all")
    code, out, _ = run("heal", str(site))
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1
    assert out.splitlines()[-1].startswith("heal: 1 alias not made;")
    assert "no aliases needed" not in out


def test_missing_dependency_is_named(tmp_path: Path, ext_dir: Path) -> None:
    """soabi-shim installed without pluggy (``python -m installer`` installs no
    dependencies): a run with no plugin needs none; once a plugin is installed,
    the missing pluggy is named."""
    site = make_site(tmp_path, ext_dir)
    code = (
        "import sys; sys.modules['pluggy'] = None\n"  # import pluggy -> ModuleNotFoundError
        "from soabi_shim.cli import main; sys.exit(main(['check', sys.argv[1]]))\n"
    )
    plugins = tmp_path / "plugins"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{plugins}"}
    args = [sys.executable, "-c", code, str(site)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert (proc.returncode, proc.stderr) == (1, "")  # the alias is pending, nothing else
    assert any(line.startswith("check: 1 ") for line in proc.stdout.splitlines())
    assert "problem" not in proc.stdout

    dist = plugins / "acme_rules-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[soabi_shim]\nacme = acme_rules\n")
    (plugins / "acme_rules.py").write_text("")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 1
    assert_one_error(proc.stderr, "'pluggy'", "pip install pluggy")


# --------------------------------------------------------------------------
# check covers files no RECORD lists
# --------------------------------------------------------------------------


def test_check_fails_on_a_loose_twin_and_names_the_fix(tmp_path: Path, ext_dir: Path) -> None:
    site = make_site(tmp_path, ext_dir, owned=False, loose=True)
    code, out, _ = run("check", str(site))
    assert code == 1
    assert "would-create  (unowned)" in out
    assert "heal --include-unowned" in out
    run("heal", str(site))  # plain heal leaves files no RECORD lists alone: check still fails
    assert run("check", str(site))[0] == 1
    assert run("heal", "--include-unowned", str(site))[0] == 0
    assert os.path.islink(site / f"loose/_speed{EXT_SUFFIX}")
    assert run("check", str(site))[0] == 0


def test_api_check_covers_loose_files_too(tmp_path: Path, ext_dir: Path) -> None:
    import soabi_shim

    site = make_site(tmp_path, ext_dir, owned=False, loose=True)
    assert not soabi_shim.check([str(site)]).ok


# --------------------------------------------------------------------------
# doctor tells the truth
# --------------------------------------------------------------------------


def test_doctor_fix_line_runs_as_printed(tmp_path: Path, venv: Venv, ext_dir: Path) -> None:
    """For --python TARGET (no soabi-shim there) the fix names an interpreter that has it."""
    shutil.copytree(make_site(tmp_path / "src", ext_dir), venv.site, dirs_exist_ok=True)
    code, out, _ = run("doctor", "--python", str(venv.python))
    assert code == 1
    (fix,) = [line[len("fix: ") :] for line in out.splitlines() if line.startswith("fix: ")]
    words = shlex.split(fix)
    assert words[:4] == [sys.executable, "-m", "soabi_shim", "heal"]
    assert words[-2:] == ["--python", str(venv.python)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run(words, capture_output=True, env=env, check=False).returncode == 0
    assert run("doctor", "--python", str(venv.python))[0] == 0


def test_loaded_is_false_when_only_the_module_was_imported() -> None:
    """Importing soabi_shim._startup (or the facts) is not the hook running."""
    code = (
        "import json, soabi_shim._startup, soabi_shim.facts\n"
        "from soabi_shim import _probe\n"
        "print(json.dumps(_probe.collect()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(_names.DISABLE_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(proc.stdout)["startup_hook_loaded"] is False


def _hook_site(tmp_path: Path, pth: bool, stamp: str) -> Path:
    """A site directory as the hook leaves it: its ``.pth`` file and a stamp."""
    site = tmp_path / "site-packages"
    (site / _names.PACKAGE_DIR).mkdir(parents=True)
    if pth:
        (site / _names.PTH_NAME).write_text("import os\n")
    mtime = os.stat(site).st_mtime_ns
    if stamp == "current":
        (site / _names.PACKAGE_DIR / _names.stamp_name(mtime)).touch()
    elif stamp == "stale":
        (site / _names.PACKAGE_DIR / _names.stamp_name(mtime - 1)).touch()
    os.utime(site, ns=(mtime, mtime))  # as the heal leaves it
    return site


@pytest.fixture
def no_hook_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if the hook's slow path never ran in it."""
    for name in ("soabi_shim._start", "soabi_shim.fallback"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize(
    ("musl", "pth", "stamp", "where", "loaded"),
    [
        (True, True, "current", "site", True),  # the line took its fast path
        (True, True, "current", "user", True),
        (True, True, "stale", "site", False),  # it would have gone down the slow path
        (True, True, "none", "site", False),
        (True, False, "current", "site", False),  # no line to run
        (False, True, "current", "site", False),  # glibc: it stops at its first test
        (True, True, "current", "elsewhere", False),  # not a site directory of this process
    ],
)
def test_loaded_when_the_line_took_its_fast_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_hook_modules: None,
    musl: bool,
    pth: bool,
    stamp: str,
    where: str,
    loaded: bool,
) -> None:
    import site as site_module

    site = _hook_site(tmp_path, pth, stamp)
    monkeypatch.setattr(_probe, "_is_musl", lambda: musl)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr(
        site_module, "getsitepackages", lambda: [str(tmp_path / "gone"), str(site if where == "site" else other)]
    )
    monkeypatch.setattr(site_module, "ENABLE_USER_SITE", where == "user")
    monkeypatch.setattr(site_module, "getusersitepackages", lambda: str(site))
    assert _probe.collect()["startup_hook_loaded"] is loaded
    assert gather_facts().startup_hook["loaded"] is loaded


@pytest.mark.parametrize("no_site", [False, True])
def test_loaded_is_false_under_dash_s(tmp_path: Path, no_site: bool) -> None:
    """``python -S`` reads no ``.pth`` file, so a current stamp is not the line's doing."""
    site = _hook_site(tmp_path, True, "current")
    code = (
        "import site, sys\n"
        "from soabi_shim import _probe\n"
        "_probe._is_musl = lambda: True\n"
        f"site.getsitepackages = lambda: [{str(site)!r}]\n"
        "print(_probe.collect()['startup_hook_loaded'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = ["-S"] if no_site else []
    proc = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout == f"{not no_site}\n"


def test_loaded_and_fallback_when_the_slow_path_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hook_modules: None
) -> None:
    import site as site_module
    import types

    monkeypatch.setattr(site_module, "getsitepackages", lambda: [])  # no fast path to find
    monkeypatch.setattr(site_module, "ENABLE_USER_SITE", False)
    monkeypatch.setattr(_probe, "_is_musl", lambda: False)
    probe = _probe.collect()
    assert (probe["startup_hook_loaded"], probe["fallback_installed"]) == (False, False)
    start = types.ModuleType("soabi_shim._start")
    start.SEEN = set()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "soabi_shim._start", start)
    assert _probe.collect()["startup_hook_loaded"] is False  # imported, but it saw no site (disabled)
    start.SEEN = {str(tmp_path)}  # type: ignore[attr-defined]
    assert _probe.collect()["startup_hook_loaded"] is True
    start.SEEN = set()  # type: ignore[attr-defined]
    start.STARTED = True  # type: ignore[attr-defined]  # the PEP 829 entry point ran, and stopped at the stamp
    assert _probe.collect()["startup_hook_loaded"] is False  # ... at its glibc test, here
    monkeypatch.setattr(_probe, "_is_musl", lambda: True)
    assert _probe.collect()["startup_hook_loaded"] is True
    start.STARTED = False  # type: ignore[attr-defined]
    assert _probe.collect()["startup_hook_loaded"] is False
    monkeypatch.setattr(_probe, "_is_musl", lambda: False)
    monkeypatch.delitem(sys.modules, "soabi_shim._start")
    fallback = types.ModuleType("soabi_shim.fallback")
    fallback.INSTALLED = False  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "soabi_shim.fallback", fallback)
    assert _probe.collect()["fallback_installed"] is False
    fallback.INSTALLED = True  # type: ignore[attr-defined]
    probe = _probe.collect()
    assert (probe["startup_hook_loaded"], probe["fallback_installed"]) == (True, True)


def test_probe_names_are_the_hooks() -> None:
    assert (_probe.PTH_NAME, _probe.PACKAGE_DIR) == (_names.PTH_NAME, _names.PACKAGE_DIR)
    assert _names.stamp_name(123) == _probe.STAMP_OK + "123"
    from soabi_shim import _start

    assert _probe._is_musl() is _start.is_musl() is (sys.platform == "linux" and not sys.thread_info.version)


def test_doctor_json_loaded_false_here(tmp_path: Path, no_hook_modules: None) -> None:
    """On this glibc host the line stops at its first test."""
    _code, out, _ = run("doctor", "--json", str(tmp_path))
    assert json.loads(out)["interpreter"]["startup_hook"]["loaded"] is False


# --------------------------------------------------------------------------
# The error map and the formatter
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (UsageError("bad"), 2),
        (InterpreterError("x"), 1),
        (RecordError("x"), 1),
        (SoabiShimError("x"), 1),
        (PermissionError(13, "Permission denied", "/site"), 1),
        (KeyboardInterrupt(), 130),
        (ModuleNotFoundError("No module named 'packaging'", name="packaging"), 1),
    ],
)
def test_exit_code_for(exc: BaseException, code: int) -> None:
    mapped = cli.exit_code_for(exc)
    assert mapped is not None and mapped[0] == code


@pytest.mark.parametrize("exc", [ValueError("bug"), ModuleNotFoundError("x", name="soabi_shim.nothing")])
def test_bugs_are_not_mapped(exc: BaseException) -> None:
    assert cli.exit_code_for(exc) is None


def _report(command: str, aliases: list[Alias], problems: list[Problem]) -> Report:
    r = Report(command, gather_facts(), sites=["/s"], aliases=aliases, problems=problems, distributions=1)
    return r


def test_summary_line_counts() -> None:
    a = Alias("demo", "1.0", "/s/demo/_x.so", "/s/demo/_y.so", "created")
    p_alias = Problem("/s/demo/_z.cpython-311-x86_64-linux-musl.so", "refused")
    p_record = Problem("/s/demo-1.0.dist-info/RECORD", "bad")
    assert cli.summary_line(_report("heal", [], [])) == "heal: no aliases needed; 1 distribution in 1 site dir"
    assert cli.summary_line(_report("heal", [a, a], [p_alias])) == (
        "heal: 2 created, 1 alias not made; 1 distribution in 1 site dir"
    )
    assert cli.summary_line(_report("undo", [], [p_alias, p_alias, p_record])) == (
        "undo: 2 aliases not removed, 1 other problem; 1 distribution in 1 site dir"
    )


def test_quiet_prints_only_problems() -> None:
    a = Alias("demo", "1.0", "/s/demo/_x.so", "/s/demo/_y.so", "would-create")
    text = cli.format_report(_report("check", [a], [Problem("/s/x.so", "no")]), quiet=True)
    assert text == "problem: /s/x.so: no"


@pytest.mark.parametrize("columns", [None, "100", "0", "-5", "wide", "37"])
def test_terminal_columns_as_shutil_finds_them(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert cli.terminal_columns() == shutil.get_terminal_size().columns


def test_help_wraps_at_the_terminal_width(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for width in (50, 140):
        monkeypatch.setenv("COLUMNS", str(width))
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["check", "--help"])
        lines = capsys.readouterr().out.splitlines()
        assert max(map(len, lines)) <= width - 2
        assert max(map(len, lines)) > width - 20  # the long help lines fill it


def test_a_command_does_not_import_shutil(tmp_path: Path) -> None:
    """argparse imports ``shutil`` (with ``bz2`` and ``lzma``) for the
    terminal width unless its formatter is told the width."""
    code = (
        "import sys\n"
        "from soabi_shim.cli import main\n"
        f"main(['check', '-q', {str(tmp_path)!r}])\n"
        "print('shutil' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=False)
    assert (out.stdout, out.stderr) == ("False\n", "")
