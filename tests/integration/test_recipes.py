"""The recipes in ``examples/`` work: the Dockerfiles build — without Docker —
and the example plugin of ``docs/plugins.md`` installs and does what it says.

Each ``examples/Dockerfile.*`` is translated into one POSIX shell script and
run on this host.  Every ``RUN`` line runs unchanged, with ``/bin/sh -c`` as
Docker does, except for the few substitutions listed below; the script stops
at the first ``RUN`` that exits non-zero, and so does the test.  The same
files are shown in ``docs/quickstart.md`` (``literalinclude``), so the docs
show what is tested.

What the translation does, and all it does:

* ``FROM``: a new stage, run in its own subshell (no ``ENV`` leaks between
  stages), with its own root directory ``<tmp>/stage-<name>`` and a fresh
  venv standing for the image's Python: its ``bin`` goes first on ``PATH``,
  so ``python``, ``pip`` and ``python3`` are that venv's.
* Absolute image paths under :data:`ROOTED` (``/opt``, ``/app``) become
  paths under the stage's root directory.
* ``pip install ... soabi-shim`` installs the wheel of this checkout instead
  of the release on PyPI.  Everything else is installed from the index.
* ``ENV`` exports, ``WORKDIR`` creates and enters, ``COPY`` copies (from the
  build context ``examples/``, or ``--from`` an earlier stage), ``USER
  nobody`` runs the following lines as uid 65534 (when the test runs as root).
* ``CMD`` (exec form) runs once, as the container would, at that point.

Any other instruction fails the test: nothing is silently skipped.  On this
glibc host there is nothing to alias — the point is that every line of the
recipes works, ``heal`` and ``check`` exit 0, and the C speedups load.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AS_NOBODY, build_wheel, make_venv

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/integration/<this file>
EXAMPLES = ROOT / "examples"  # the build context of the recipes
RECIPES = sorted(EXAMPLES.glob("Dockerfile.*"))

#: Absolute paths inside the image that are moved under the stage's root.
ROOTED = ("/opt", "/app")
_ROOTED_RE = re.compile(r"(?<![\w.$/-])(?=(?:{})(?:/|\b))".format("|".join(map(re.escape, ROOTED))))
#: ``pip install [options] soabi-shim``: the package name is swapped for the wheel.
_PIP_INSTALL_SHIM_RE = re.compile(r"(\bpip install(?: --?[\w-]+(?:=\S+)?)*) soabi-shim(?=\s|$|;|&)")
#: The users a recipe may switch to, as a command prefix.
USERS = {"root": [], "0": [], "nobody": AS_NOBODY if os.geteuid() == 0 else []}
SENTINEL = "RECIPE-DONE"
#: Settings of the outer environment that would send pip or Python elsewhere.
_SCRUB = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_REQUIRE_VIRTUALENV",
    "SOABI_SHIM_DISABLE",
    "SOABI_SHIM_FALLBACK_ONLY",
)


def instructions(text: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` of each Dockerfile instruction, continuations joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue  # comments (also inside a continuation) and blank lines
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        keyword, _, rest = (buf + stripped).partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a line continuation"
    return out


def _exec_form(arguments: str) -> str:
    """``["python", "-c", "..."]`` -> a shell command line; shell form unchanged."""
    if arguments.startswith("["):
        return shlex.join(json.loads(arguments))
    return arguments


def translate(dockerfile: Path, workdir: Path, wheel: Path, *, with_pip: bool = True) -> str:
    """The shell script that stands for ``docker build`` (+ ``CMD``) of ``dockerfile``."""
    q = shlex.quote
    assert re.fullmatch(r"[\w/.+-]+", str(workdir)), "paths go into ENV values unquoted"
    lines = ["set -eu"]
    stages: dict[str, Path] = {}
    root: Path | None = None
    user: list[str] = []

    def rooted(text: str) -> str:
        assert root is not None, "an instruction before FROM"
        return _ROOTED_RE.sub(str(root), text)

    for keyword, args in instructions(dockerfile.read_text()):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            if root is not None:
                lines.append(")")
            root = stages[name] = workdir / f"stage-{name}"
            base = root / "image-python"
            user = []
            lines += [
                f"echo {q('+ FROM ' + args)}",
                "(",
                f"mkdir -p {q(str(root))}",
                f"{q(sys.executable)} -m venv {'' if with_pip else '--without-pip '}{q(str(base))}",
                f'export PATH={q(str(base / "bin"))}:"$PATH"',
                f"cd {q(str(root))}",
            ]
        elif keyword in ("RUN", "CMD"):
            command = _PIP_INSTALL_SHIM_RE.sub(lambda m: f"{m[1]} {q(str(wheel))}", rooted(_exec_form(args)))
            lines += [f"echo {q(f'+ {keyword} {args}')}", shlex.join([*user, "/bin/sh", "-c", command])]
        elif keyword == "ENV":
            assert "=" in args.split()[0], "only the ENV KEY=VALUE form is supported"
            lines.append(f"export {rooted(args)}")
        elif keyword == "WORKDIR":
            lines += [f"mkdir -p {q(rooted(args))}", f"cd {q(rooted(args))}"]
        elif keyword == "USER":
            assert args in USERS, f"USER {args}: not one of {sorted(USERS)}"
            user = USERS[args]
        elif keyword == "COPY":
            words = args.split()
            if words[0].startswith("--from="):
                source_root = stages[words[0][len("--from=") :]]
                src = _ROOTED_RE.sub(str(source_root), words[1])
                words = words[1:]
            else:
                src = str(EXAMPLES / words[0])
            assert len(words) == 2, f"COPY {args}: one source and one destination only"
            dst = rooted(words[1]) + (os.path.basename(src) if words[1].endswith("/") else "")
            lines.append(
                f"if [ -d {q(src)} ]; then mkdir -p {q(dst)} && cp -a {q(src)}/. {q(dst)}/; "
                f"else mkdir -p {q(os.path.dirname(dst) or '.')} && cp -a {q(src)} {q(dst)}; fi"
            )
        else:
            raise AssertionError(f"{dockerfile.name}: {keyword} is not supported by this test")
    assert root is not None, "no FROM"
    lines += [")", f"echo {SENTINEL}"]
    return "\n".join(lines) + "\n"


def run_script(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        ["/bin/sh", str(path)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=1800, check=False
    )


@pytest.fixture(scope="module")
def checkout_wheel(shim_wheel: Path) -> Path:
    """The wheel of this checkout (what ``pip install soabi-shim`` stands for)."""
    return shim_wheel


def test_there_are_recipes() -> None:
    assert {p.name for p in RECIPES} >= {"Dockerfile.alpine", "Dockerfile.multistage", "Dockerfile.nonroot"}


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_is_in_the_docs(recipe: Path) -> None:
    quickstart = (ROOT / "docs" / "quickstart.md").read_text()
    assert f"{{literalinclude}} ../examples/{recipe.name}\n" in quickstart


def test_translation_is_what_the_docstring_says(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.12-alpine AS build\n"
        "RUN python -m venv /opt/venv && \\\n"
        "    # a comment inside a continuation\n"
        "    /opt/venv/bin/pip install --no-cache-dir soabi-shim markupsafe\n"
        'ENV PATH="/opt/venv/bin:$PATH"\n'
        "FROM python:3.12-alpine\n"
        "COPY --from=build /opt/venv /opt/venv\n"
        "USER nobody\n"
        'CMD ["python", "-c", "print(1)"]\n'
    )
    wheel = tmp_path / "soabi_shim-0-py3-none-any.whl"
    script = translate(dockerfile, tmp_path, wheel)
    build, final = tmp_path / "stage-build", tmp_path / "stage-1"
    assert f"{build}/opt/venv/bin/pip install --no-cache-dir {wheel} markupsafe" in script
    assert f'export PATH="{build}/opt/venv/bin:$PATH"' in script
    assert f"cp -a {build}/opt/venv/. {final}/opt/venv/" in script
    assert shlex.join([*USERS["nobody"], "/bin/sh", "-c", "python -c 'print(1)'"]) in script
    assert script.count("\n(\n") == 2  # one subshell per stage


@pytest.mark.parametrize(
    ("line", "ok"), [("true", True), ("false", False), ("true && exit 3", False), ("false; true", True)]
)
def test_a_failing_run_line_fails_the_script(tmp_path: Path, line: str, ok: bool) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.12-alpine\nRUN {line}\nRUN echo after\n")
    proc = run_script(translate(dockerfile, tmp_path, tmp_path / "x.whl", with_pip=False), tmp_path / "build.sh")
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    assert (SENTINEL in proc.stdout) is ok
    assert ("\nafter\n" in proc.stdout) is ok


@pytest.mark.skipif(os.geteuid() != 0, reason="USER nobody runs as the current user unless root")
def test_user_nobody_really_is_nobody(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'FROM python:3.12-alpine\nRUN test "$(id -u)" = 0\nUSER nobody\nRUN test "$(id -u)" = 65534\n'
        "RUN ! touch not-writable-by-nobody\nUSER root\nRUN touch writable-by-root\n"
    )
    proc = run_script(translate(dockerfile, tmp_path, tmp_path / "x.whl", with_pip=False), tmp_path / "build.sh")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_builds(recipe: Path, tmp_path: Path, checkout_wheel: Path) -> None:
    script = translate(recipe, tmp_path, checkout_wheel)
    assert str(checkout_wheel) in script, "the recipe never runs `pip install soabi-shim`"
    assert "-m soabi_shim check" in script, "the recipe never runs `python -m soabi_shim check`"
    proc = run_script(script, tmp_path / "build.sh")
    log = f"--- script\n{script}--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, log
    assert proc.stdout.rstrip().endswith(SENTINEL), log
    ran = [line for line in proc.stdout.splitlines() if line.startswith(("+ RUN ", "+ CMD "))]
    expected = [kw for kw, _ in instructions(recipe.read_text()) if kw in ("RUN", "CMD")]
    assert len(ran) == len(expected), log
    # soabi-shim's start-up hook went in with the wheel, in every stage that has it.
    hooks = list(tmp_path.glob("stage-*/**/site-packages/soabi_shim-startup.pth"))
    assert hooks, log


@pytest.mark.slow
def test_example_plugin(tmp_path: Path, checkout_wheel: Path, demo_wheel: Path) -> None:
    """examples/plugin: both entry points load, the spelling is added, the veto and the log work."""
    plugin_wheel = build_wheel(EXAMPLES / "plugin", tmp_path / "plugin-wheel")
    venv = make_venv(tmp_path / "venv")
    venv.pip("install", str(checkout_wheel), str(plugin_wheel), str(demo_wheel))
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}

    probe = venv.run(
        "from soabi_shim.plugins import get_plugin_host\n"
        "from soabi_shim.suffixes import parse_suffix\n"
        "host = get_plugin_host()\n"
        "print(sorted(name for name, _ in host.manager.list_name_plugin()))\n"
        "musl = parse_suffix('.cpython-312-x86_64-linux-musl.so')\n"
        "results = host.call('soabi_shim_twin_suffixes', accepted=musl, facts=None)\n"
        "print(sorted(s for r in results for s in r))\n"
        "print(host.failures)\n",
        env=env,
    )
    assert probe.returncode == 0, probe.stderr
    names, suffixes, failures = map(ast.literal_eval, probe.stdout.splitlines())
    assert {"acme-policy", "acme-spelling", "builtin"} <= set(names)
    assert {".cpython-312-x86_64-linux-gnu.so", ".cpython-312-x86_64-linux-muslacme.so"} <= set(suffixes)
    assert failures == []

    def shim(*args: str, **extra: str) -> tuple[int, Any]:
        proc = subprocess.run(
            [str(venv.python), "-m", "soabi_shim", *args, "--json", str(venv.site)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.returncode, json.loads(proc.stdout)

    log = tmp_path / "audit.jsonl"
    code, report = shim("heal", ACME_SOABI_DENY="Demo, other", ACME_SOABI_LOG=str(log))
    assert code == 1
    assert report["aliases"] == []
    assert [p["reason"] for p in report["problems"]] == ["ACME policy: demo is in ACME_SOABI_DENY"]
    assert not log.exists()  # nothing changed, nothing logged

    code, report = shim("heal", ACME_SOABI_LOG=str(log))
    assert code == 0, report
    assert [a["action"] for a in report["aliases"]] == ["created"]
    assert Path(report["aliases"][0]["alias"]).is_symlink()
    code, report = shim("undo", ACME_SOABI_LOG=str(log))
    assert code == 0, report
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["command"], [a["action"] for a in e["aliases"]]) for e in entries] == [
        ("heal", ["created"]),
        ("undo", ["removed"]),
    ]


# --------------------------------------------------------------------------
# The README (the package's long description) and the CLI reference
# --------------------------------------------------------------------------

_MD_LINK_RE = re.compile(r"\]\(([^)\s]+)\)|<(\S+?)>|\bhref=\"([^\"]+)\"")


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("pip install . && python -m soabi_shim heal")
    assert block[1].startswith("pip install -e '.[test]' && python -m pytest")


def test_readme_has_no_relative_links() -> None:
    """PyPI shows the README as the long description: relative links break there."""
    text = (ROOT / "README.md").read_text()
    links = [next(g for g in m.groups() if g) for m in _MD_LINK_RE.finditer(text)]
    assert all(link.startswith("https://") for link in links), links


def test_every_environment_variable_is_in_the_cli_reference() -> None:
    used: set[str] = set()
    for folder in ("soabi_shim", "tools", "tests", "hook"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".pth", ".start", ""):
                used.update(re.findall(r"SOABI_SHIM_[A-Z0-9_]*[A-Z0-9]", path.read_text(errors="replace")))
    documented = set(re.findall(r"`(SOABI_SHIM_[A-Z0-9_]+)`", (ROOT / "docs" / "cli.md").read_text()))
    assert used, "no variables found: the scan is broken"
    assert used <= documented, sorted(used - documented)
