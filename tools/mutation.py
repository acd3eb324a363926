#!/usr/bin/env python3
"""Mutation testing of soabi-shim's core modules with mutmut, scored per module.

Stdlib only (mutmut itself must be installed: ``pip install mutmut==3.8.1``,
with the project's test dependencies but *not* soabi-shim itself: an
editable install shadows mutmut's ``mutants/`` copy and mutmut then "finds
no tests"; pytest's rootdir insertion finds the package)::

    python tools/mutation.py                      # every module in MODULES
    python tools/mutation.py --modules record,elf # some of them
    python tools/mutation.py --changed            # only modules changed since the scores were recorded
    python tools/mutation.py --record             # also write the scores to tools/mutation-scores.json
    python tools/mutation.py --modules scan --keep /tmp/m   # keep the scratch copy: then, in /tmp/m,
                                                  # mutmut results / mutmut show <mutant>
    python tools/mutation.py --modules scan --resume /tmp/m # after writing tests against those survivors:
                                                  # re-judge only them, with the current tests

The tracked files of this checkout (plus uncommitted changes) are copied to a
scratch directory, so the work tree is never touched.  mutmut mutates only
the chosen modules, runs the unit and in-process integration tests that
cover each mutated function, and this script prints one line per module:
killed / total and the score.  A mutant counts as killed when a test failed
or timed out; "no tests" counts as survived.  The exit status is 1 when any
module scores below ``--min-score`` (0.90 by default), 0 otherwise.

``--changed`` compares each module's SHA-256 with the one recorded in
``tools/mutation-scores.json``: CI runs only those, so a change that weakens
the tests of a module fails CI, while unchanged modules cost nothing.  Only
modules with a recorded baseline are gated; the others are named in the
output until a ``--record`` run scores them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "tools" / "mutation-scores.json"
TABLE = ROOT / "docs" / "mutation-scores.md"
#: The modules whose tests must kill mutants (issue 10): the engine and the
#: start-up hook.  Paths relative to the checkout.
MODULES = [
    "soabi_shim/record.py",
    "soabi_shim/sitefs.py",
    "soabi_shim/apply.py",
    "soabi_shim/plan.py",
    "soabi_shim/scan.py",
    "soabi_shim/suffixes.py",
    "soabi_shim/elf.py",
    "soabi_shim/_startup.py",
]
#: The stats phase runs this selection once and it must pass.  mutmut judges a
#: mutant only by the tests that reached the mutated function *in process*, so
#: tests that drive soabi-shim only through subprocesses can kill nothing and
#: are left out: ``test_installers.py`` (pip/uv/installer into fresh venvs;
#: its ``--user`` case cannot pass inside a venv) and the ``slow`` ones (tox,
#: nox, kill-at-any-moment loops).  ``test_sites_loads_plugins_from_the_site_only``
#: checks in a fresh interpreter that ``importlib.metadata`` stays unimported,
#: which mutmut's own import hooks (inherited through the environment) break.
#: ``test_startup.py`` installs a wheel built from the mutated copy into fresh
#: venvs, where the mutants' trampolines cannot import mutmut; its in-process
#: twin is ``tests/unit/test_kill_startup.py``.
#: They all still run in the ordinary test jobs.
TESTS = [
    "tests/unit",
    "tests/integration",
    "--ignore=tests/integration/test_installers.py",
    "--deselect=tests/integration/test_plugins.py::test_sites_loads_plugins_from_the_site_only",
    "--ignore=tests/integration/test_startup.py",
    # They assert which modules a run imports; mutmut's trampolines import more.
    "--deselect=tests/integration/test_lean_heal.py::test_heal_site_imports_nothing_heavy",
    "--deselect=tests/integration/test_plugins.py::test_cli_without_plugins_imports_neither_pluggy_nor_metadata",
    "--deselect=tests/integration/test_cli.py::test_a_command_does_not_import_shutil",
    # It greps the sources for SOABI_SHIM_* names; mutmut's copies of a
    # hook-name string in upper case (the hook soabi_shim_twin_suffixes, upper-cased) look like one.
    "--deselect=tests/integration/test_recipes.py::test_every_environment_variable_is_in_the_cli_reference",
    "-m",
    "not slow and not e2e",
]
#: Besides the package: what the tests read (examples/ holds the recipes).
ALSO_COPY = ["tests", "hook", "tools", "examples", "docs", "benchmarks", "tox.ini", "README.md", "LICENSE"]
KILLED = {"killed", "timeout", "segfault", "suspicious"}
#: mutmut 3's exit codes in its ``mutants/<module>.meta`` files.
#: (What mutmut.stats.status_by_exit_code says; any other code is "suspicious".)
STATUS = {0: "survived", 2: "interrupted", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout"}
COUNTED = KILLED | {"survived", "no tests"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def _copy_checkout(dest: Path) -> None:
    for rel in _tracked_files():
        src = ROOT / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _config(modules: list[str], package_files: list[str]) -> str:
    skip = [f for f in package_files if f not in modules]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["soabi_shim/"]\n'
        f"do_not_mutate = {json.dumps(skip)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(TESTS)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        # A CPU-time limit of 10 x (the covering tests' time + 1 s), not mutmut's
        # 30 x: a mutant that loops (suffixes' parser) is judged in seconds.
        "timeout_multiplier = 5.0\n"
        f"also_copy = {json.dumps(ALSO_COPY)}\n"
    )


def _results(workdir: Path) -> dict[str, dict[str, int]]:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    per_module: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        # soabi_shim.record.x_func__mutmut_3 / soabi_shim.record.x\u01c1Class\u01c1meth__mutmut_3
        module = ".".join(name.split(".")[:2])
        counts = per_module.setdefault(module, {"killed": 0, "total": 0})
        if status in COUNTED:
            counts["total"] += 1
            counts["killed"] += status in KILLED
    return per_module


def run(modules: list[str], jobs: int, keep: Path | None = None) -> dict[str, dict[str, int]]:
    if keep is not None:
        if keep.exists():
            shutil.rmtree(keep)
        keep.mkdir(parents=True)
        return _run_in(keep, modules, jobs)
    with tempfile.TemporaryDirectory(prefix="soabi-shim-mutation-") as tmp:
        return _run_in(Path(tmp), modules, jobs)


def _run_in(work: Path, modules: list[str], jobs: int) -> dict[str, dict[str, int]]:
    _copy_checkout(work)
    _write_config(work, modules)
    _mutmut_run(work, jobs)
    return _results(work)


def _write_config(work: Path, modules: list[str]) -> None:
    """This checkout's ``pyproject.toml`` with mutmut's section for ``modules``."""
    package_files = sorted(str(p.relative_to(work)) for p in (work / "soabi_shim").rglob("*.py"))
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    with open(work / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write(_config(modules, package_files))


def _mutmut_run(work: Path, jobs: int, names: Iterable[str] = ()) -> None:
    """``mutmut run`` in ``work``: every mutant, or only ``names``."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("SOABI_SHIM_REQUIRE_E2E", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:])
        raise SystemExit(f"mutmut run failed with exit status {proc.returncode}")


def _survivors(work: Path, modules: list[str]) -> list[str]:
    """The mutants of ``modules`` that survived, had no tests or were not judged in ``work``."""
    names = []
    for m in modules:
        meta = work / "mutants" / f"{m}.meta"
        if not meta.is_file():
            raise SystemExit(f"mutation: {meta} missing: was {m} mutated in {work}?")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        # Not judged yet (an interrupted run): judged now.
        names += [n for n, code in codes.items() if code is None or STATUS.get(code, "suspicious") not in KILLED]
    return names


def resume(work: Path, modules: list[str], jobs: int) -> dict[str, dict[str, int]]:
    """Re-judge, in a kept run directory, only the mutants that survived there.

    Adding tests cannot revive a killed mutant, so the kills of the earlier
    run stand as long as the module is unchanged (checked here): the tests of
    this checkout are copied in, and mutmut re-runs the survivors with them.
    The package's other modules are copied in too (the new tests may use
    them); the ones that changed since the run are named, because a change
    there could in principle revive a kill: run afresh for a strict score.
    """
    for m in modules:
        kept = work / m
        if not kept.is_file() or _sha(kept) != _sha(ROOT / m):
            raise SystemExit(f"mutation: {m} changed since the run in {work}: run it afresh (--keep)")
    shutil.rmtree(work / "tests")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    changed = []
    for rel in _tracked_files():
        source = ROOT / rel
        if not rel.startswith("soabi_shim/") or rel in modules or not source.is_file():
            continue
        if not (work / rel).is_file() or _sha(work / rel) != _sha(source):
            changed.append(rel)
        for target in (work / rel, work / "mutants" / rel):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if changed:
        print(f"mutation: changed since the run, copied in: {', '.join(changed)}", flush=True)
    _write_config(work, modules)  # the current test selection
    names = _survivors(work, modules)
    before = {m: _codes(work, m) for m in modules}
    if names:
        _mutmut_run(work, jobs, names)
    # mutmut re-generates a module's mutants (and forgets their results) when
    # its configuration or the package changed: the earlier judgments of the
    # mutants not re-run are put back (the module itself is unchanged).
    rerun = set(names)
    for m in modules:
        meta = work / "mutants" / f"{m}.meta"
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in before[m].items():
            if name not in rerun and codes.get(name) is None and code is not None:
                codes[name] = code
        meta.write_text(json.dumps(data))
    return _results(work)


def _codes(work: Path, module: str) -> dict[str, int | None]:
    codes: dict[str, int | None] = json.loads((work / "mutants" / f"{module}.meta").read_text())["exit_code_by_key"]
    return codes


def _table(recorded: dict[str, dict[str, object]]) -> str:
    lines = [
        "Recorded by `python tools/mutation.py --record` (or `--resume DIR --record`); *tests at* is the"
        " commit whose tests scored the module, on the module source whose SHA-256 is in"
        " `tools/mutation-scores.json`.",
        "",
        "| module | killed | mutants | score | tests at |",
        "|---|---:|---:|---:|---|",
    ]
    for m in sorted(recorded):
        r = recorded[m]
        commit = f"`{r['commit']}`" if r.get("commit") else "?"
        lines.append(f"| `{m}` | {r['killed']} | {r['total']} | {float(str(r['score'])):.1%} | {commit} |")
    return "\n".join(lines) + "\n"


def _head() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "tests"], cwd=ROOT, check=False).returncode
    return (out.stdout.strip() or "?") + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--modules", help="comma-separated module names (record,elf,...); default: all of MODULES")
    ap.add_argument("--changed", action="store_true", help="only modules whose source changed since --record")
    ap.add_argument("--record", action="store_true", help=f"write the scores to {SCORES.relative_to(ROOT)}")
    ap.add_argument("--min-score", type=float, default=0.90, help="fail below this share of killed mutants")
    ap.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="run in DIR (emptied first) and keep it, to inspect survivors with `mutmut results` / `mutmut show`",
    )
    ap.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="in DIR, kept by an earlier --keep run of the same module sources, re-judge only the survivors "
        "with this checkout's tests",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutmut worker processes")
    args = ap.parse_args(argv)

    modules = [m for m in MODULES if (ROOT / m).is_file()]
    if args.modules:
        wanted = {f"soabi_shim/{m.strip().removesuffix('.py')}.py" for m in args.modules.split(",")}
        unknown = wanted - set(modules)
        if unknown:
            ap.error(f"not a mutation-tested module: {', '.join(sorted(unknown))}")
        modules = [m for m in modules if m in wanted]
    recorded: dict[str, dict[str, object]] = json.loads(SCORES.read_text()) if SCORES.is_file() else {}
    if args.changed:
        # The gate covers the modules with a recorded baseline; the others are
        # named, not hidden, until someone scores them with --record.
        unscored = [m for m in modules if m not in recorded]
        if unscored:
            print(f"mutation: no recorded baseline yet (not gated): {', '.join(unscored)}")
        for m in modules:
            if m in recorded and recorded[m].get("sha256") == _sha(ROOT / m):
                print(f"mutation: {m}: unchanged since recorded, score {float(str(recorded[m]['score'])):.1%}")
        modules = [m for m in modules if m in recorded and recorded[m].get("sha256") != _sha(ROOT / m)]
        if not modules:
            print("mutation: no gated module changed since the recorded scores")
            return 0
    print(f"mutation: mutmut over {', '.join(modules)}", flush=True)
    results = resume(args.resume, modules, args.jobs) if args.resume is not None else run(modules, args.jobs, args.keep)
    failed = False
    for m in modules:
        dotted = m.removesuffix(".py").replace("/", ".")
        counts = results.get(dotted, {"killed": 0, "total": 0})
        score = counts["killed"] / counts["total"] if counts["total"] else 1.0
        low = score < args.min_score
        failed |= low
        below = f"  BELOW {args.min_score:.0%}" if low else ""
        print(f"mutation: {m}: {counts['killed']}/{counts['total']} killed, score {score:.1%}{below}")
        recorded[m] = {"sha256": _sha(ROOT / m), **counts, "score": round(score, 4), "commit": _head()}
    if args.record:
        # Read again: another run may have recorded other modules meanwhile.
        latest = json.loads(SCORES.read_text()) if SCORES.is_file() else {}
        recorded = {**latest, **{m: recorded[m] for m in modules}}
        SCORES.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        TABLE.write_text(_table(recorded))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
