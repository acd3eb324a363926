#!/usr/bin/env python3
"""What soabi-shim's start-up hook costs every interpreter start.

For each interpreter, two venvs are made (``python -m venv --without-pip``)
and the same pure-Python dependency set is installed into both from wheels
(installer, packaging, pluggy); the soabi-shim wheel built from this checkout
is installed with ``--no-deps`` into one of them only.  The venvs then differ
in nothing but soabi-shim, its ``soabi_shim-startup.pth`` included.

(a) the running interpreter (glibc CPython on a glibc host), ``python -c pass``:
    with ``.pyc`` files present (``compileall``), and with
    ``PYTHONDONTWRITEBYTECODE=1`` and every ``__pycache__`` of both venvs
    deleted.  On glibc the hook stops after ``confstr``.
(b) the musl-linked CPythons of ``tools/build_musl_python.py`` (musl311,
    native, says ``-musl``; gnu311, cross-built style, says ``-gnu``), same
    two variants, *when nothing changed*: the shim venv's python is run once
    first so its hook heals and writes the stamp, and the stamp is verified to
    match the site directory's mtime before (and after) measuring.  The hook
    then does a ``stat`` and a read.
(c) gnu311: the first ``python -c pass`` after N new distributions (N = 1, 10,
    100) were installed, each with one copy of the real markupsafe cp311
    musllinux wheel's ``_speedups.cpython-311-x86_64-linux-musl.so`` (installed
    by writing the files, dist-info and RECORD directly, then ``sync``), so this
    start heals them; against the next start, when nothing changed.  Between
    repetitions the N distributions are removed and the stamp renewed.

(heal) a healing start against the next start, for one new distribution with one
    extension named for the other libc (markupsafe's ``_speedups`` from the real cp311
    musllinux wheel under the name the interpreter does not load): on musl311 and gnu311 the
    start whose hook heals it (``python -c pass``) against the next (fast-path) start, paired
    in each repetition; on the host, where the hook never heals, the healing start is
    simulated with what the musl hook runs (``_startup.heal_start(site)`` after installing a
    glibc-linked extension named ``-musl``) against ``python -c pass``.  Median of the paired
    differences (target <= 15 ms) and, from one more round under ``-X importtime``, the
    number of modules each start imports and the non-soabi-shim ones only the healing start
    imports (counts do not depend on the machine's load).

Every start is a new process (``posix_spawn``, output to ``/dev/null``), timed
from the parent.  (a) and (b) are paired and interleaved (AB, BA, ...): median
of each, ratio of medians (with-shim / without) and its 95% bootstrap interval.
Target: ratio <= 1.01.

    python benchmarks/bench_startup.py [--quick] [--json FILE] [--parts a,b,c,d,heal]
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from functools import partial
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench as B

TARGET = 1.01
HEAL_NS = (1, 10, 100)


def make_pair(base: str, work: Path, tag: str, deps: list[Path], shim: Path) -> tuple[B.Venv, B.Venv, B.Venv]:
    """Three venvs with the same dependencies: without soabi-shim, without it
    but with an empty ``.pth`` file (the floor any ``.pth`` costs), and with it."""
    plain = B.Venv(base, work / f"{tag}-plain")
    empty = B.Venv(base, work / f"{tag}-empty-pth")
    with_shim = B.Venv(base, work / f"{tag}-shim")
    for v in (plain, empty, with_shim):
        v.install(*deps)
    (empty.site / "soabi_shim-startup.pth").write_text("")
    with_shim.install(shim)
    return plain, empty, with_shim


def ensure_stamp(v: B.Venv, env: dict[str, str]) -> None:
    """Run the venv's python until its hook has healed and the stamp is current."""
    for _ in range(3):
        if v.stamp_current():
            return
        B.timed([v.python, "-c", "pass"], env)
    sys.exit(f"{v.site}: the stamp {v.stamp()!r} does not match the site mtime {os.stat(v.site).st_mtime_ns}")


def startup_variants(
    label: str, venvs: tuple[B.Venv, B.Venv, B.Venv], pairs: int, musl: bool, results: dict[str, Any]
) -> list[list[str]]:
    shim = venvs[2]
    rows = []
    for variant in ("pyc", "no-pyc"):
        if variant == "pyc":
            env = B.clean_env()
            for v in venvs:
                v.compile_all()
        else:
            env = B.clean_env(PYTHONDONTWRITEBYTECODE="1")
            for v in venvs:
                v.drop_pycache()
        if musl:
            ensure_stamp(shim, env)
            stamp = shim.stamp()
        a, e, b = B.round_robin(
            pairs,
            [partial(B.timed, [v.python, "-c", "pass"], env) for v in venvs],
            warmup=10,
        )
        if musl and (not shim.stamp_current() or shim.stamp() != stamp):
            sys.exit(f"{shim.site}: the stamp changed while measuring")
        c = B.compare(a, b)
        floor = B.compare(a, e)
        above = B.compare(e, b)
        results[f"{label}/{variant}"] = {"ns_without": a, "ns_empty_pth": e, "ns_with": b, **c, "empty_pth": floor}
        what = ".pyc present" if variant == "pyc" else "PYTHONDONTWRITEBYTECODE=1, no `__pycache__`"
        lo, hi = c["ratio_ci95"]
        ok = c["ratio"] <= TARGET or above["ratio"] <= 1.005
        rows.append(
            [
                label,
                what,
                B.med_iqr(c["a"]),
                B.med_iqr(floor["b"]),
                B.med_iqr(c["b"]),
                f"{floor['ratio']:.4f}",
                f"{c['ratio']:.4f} ({lo:.4f} to {hi:.4f})",
                f"{above['ratio']:.4f}",
                "yes" if ok else "**no**",
            ]
        )
        print(f"  {label}, {what}: ratio {c['ratio']:.4f}, above the empty .pth {above['ratio']:.4f}", file=sys.stderr)
    return rows


def speedups_so(work: Path) -> tuple[bytes, str]:
    """The ELF of markupsafe's extension from the real cp311 musllinux wheel, and its file name."""
    with zipfile.ZipFile(B.musllinux_wheel(work)) as z:
        (name,) = [n for n in z.namelist() if n.startswith("markupsafe/_speedups.") and n.endswith(".so")]
        return z.read(name), name.rsplit("/", 1)[1]


def heal_cost(shim: B.Venv, work: Path, reps: int, results: dict[str, Any]) -> list[list[str]]:
    so, so_name = speedups_so(work)
    suffix = so_name[len("_speedups") :]
    native = B.libc_twin(suffix)
    env = B.clean_env()
    shim.compile_all()
    ensure_stamp(shim, env)
    argv = [shim.python, "-c", "pass"]
    for _ in range(10):
        B.timed(argv, env)
    rows = []
    for n in HEAL_NS:
        first: list[int] = []
        normal: list[int] = []
        for _ in range(reps):
            infos = [
                B.write_dist(shim.site, f"heal_bench_{i:03d}", "1.0", {f"heal_bench_{i:03d}/_speedups{suffix}": so})
                for i in range(n)
            ]
            os.sync()
            first.append(B.timed(argv, env))
            made = sum((shim.site / f"heal_bench_{i:03d}" / f"_speedups{native}").is_symlink() for i in range(n))
            if made != n or not shim.stamp_current():
                sys.exit(f"{shim.site}: the first start made {made} of {n} aliases; stamp {shim.stamp()!r}")
            normal.append(B.timed(argv, env))
            for info in infos:
                B.remove_dist(shim.site, info)
            ensure_stamp(shim, env)
        c = B.compare(normal, first)
        results[f"heal/{n}"] = {"ns_normal": normal, "ns_first": first, **c}
        diff = c["b"]["median"] - c["a"]["median"]
        rows.append(
            [
                str(n),
                B.med_iqr(c["b"]),
                B.med_iqr(c["a"]),
                B.ms(diff),
                B.ms(diff / n),
                f"{c['ratio']:.2f}",
            ]
        )
        print(f"  heal at start, N={n}: +{B.ms(diff)} ms", file=sys.stderr)
    return rows


def _own_suffix(python: str) -> str:
    out = B.run([python, "-c", "import importlib.machinery as m; print(m.EXTENSION_SUFFIXES[0])"], B.clean_env())
    return out.stdout.strip()


def _module_count(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """How many modules a start imports (``-X importtime``; does not depend on load), and their names."""
    out = B.run([argv[0], "-X", "importtime", *argv[1:]], env)
    names = [
        line.split("|")[2].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    ]
    return len(names), names


def heal_vs_next(
    label: str, shim: B.Venv, so: bytes, reps: int, results: dict[str, Any], *, heal_argv: Optional[list[str]] = None
) -> list[str]:
    """One new distribution with one extension named for the other libc: the
    start that heals it against the next start, paired (each repetition
    installs, times the healing start, then the next one) and repeated;
    median of each, median of the paired differences (IQR).  ``heal_argv``:
    what stands for the healing start (the host simulation), else
    ``python -c pass``, whose hook heals on musl."""
    foreign = B.libc_twin(_own_suffix(shim.python))
    native = B.libc_twin(foreign)
    env = B.clean_env()
    shim.compile_all()
    plain = [shim.python, "-c", "pass"]
    first_argv = heal_argv or plain
    if heal_argv is None:
        ensure_stamp(shim, env)
    for _ in range(5):
        B.timed(plain, env)
    first: list[int] = []
    normal: list[int] = []
    counts: dict[str, Any] = {}
    for i in range(reps + 1):
        info = B.write_dist(shim.site, "heal_next_bench", "1.0", {f"heal_next_bench/_speedups{foreign}": so})
        os.sync()
        if i == reps:  # a last round counts the modules instead
            counts["first"] = _module_count(first_argv, env)
        else:
            first.append(B.timed(first_argv, env))
        alias = shim.site / "heal_next_bench" / f"_speedups{native}"
        if not alias.is_symlink() or (heal_argv is None and not shim.stamp_current()):
            sys.exit(f"{shim.site}: the healing start made no alias (stamp {shim.stamp()!r})")
        if i == reps:
            counts["next"] = _module_count(plain, env)
        else:
            normal.append(B.timed(plain, env))
        B.remove_dist(shim.site, info)
        if heal_argv is None:
            ensure_stamp(shim, env)
    diffs = [f - n for f, n in zip(first, normal)]
    c = B.compare(normal, first)
    d = B.summary(diffs)
    results[f"heal-vs-next/{label}"] = {
        "ns_first": first,
        "ns_next": normal,
        "ns_diff": diffs,
        "modules_first": counts["first"][1],
        "modules_next": counts["next"][1],
        **c,
    }
    extra = sorted(set(counts["first"][1]) - set(counts["next"][1]))
    stdlib = [m for m in extra if not m.startswith("soabi_shim")]
    print(f"  {label}: healing start +{B.ms(d['median'])} ms; modules beyond soabi_shim: {stdlib}", file=sys.stderr)
    return [
        label,
        B.med_iqr(c["b"]),
        B.med_iqr(c["a"]),
        B.med_iqr(d),
        "yes" if d["median"] <= 15e6 else "**no**",
        f"{counts['first'][0]} / {counts['next'][0]}",
        ", ".join(stdlib) or "-",
    ]


def heal_parts(
    work: Path, shim_wheel: Path, deps: list[Path], musl: dict[str, Optional[Path]], reps: int, results: dict[str, Any]
) -> list[list[str]]:
    rows = []
    so, _name = speedups_so(work)
    for flavour, exe in musl.items():
        if exe is None:
            continue
        shim = make_pair(str(exe), work, f"heal-{flavour}", deps, shim_wheel)[2]
        rows.append(heal_vs_next(flavour, shim, so, reps, results))
    # The host (glibc): its hook never heals at start, so the healing start is
    # simulated with what the musl hook runs (heal_start on the site directory),
    # with a glibc-linked extension named -musl; the next start is `-c pass`.
    host = make_pair(sys.executable, work, "heal-host", deps, shim_wheel)[2]
    suffix = _own_suffix(host.python)
    built = B.compile_extension(work / "heal-host-ext", "_speedups", B.libc_twin(suffix))
    argv = [host.python, "-c", f"from soabi_shim._startup import heal_start; heal_start({str(host.site)!r})"]
    rows.append(heal_vs_next("glibc host (simulated)", host, built.read_bytes(), reps, results, heal_argv=argv))
    return rows


PTH_VARIANTS = {
    "no `.pth`": None,
    "an empty `.pth`": "",
    "`import os, sys`": "import os, sys\n",
    "the glibc test alone": "import sys;sys.thread_info.version\n",
}
TWO_STAGE = "its glibc test alone, the rest in `exec`"
ONE_MODULE = "`import` of one module (the glibc test in it)"
#: The in-site markers are modules, imported by plain ``import`` lines: they
#: compile no expression, so the line measured between them is the first
#: expression this process compiles (as it is for soabi-shim's line).
MARKER = "import time, sys\nsys.__dict__.setdefault('_bench_t', []).append(time.perf_counter_ns())\n"
ONE_MODULE_SOURCE = "import sys\nsys.thread_info.version\n"


def _variants(line: str) -> dict[str, Optional[str]]:
    variants = {**PTH_VARIANTS, "soabi-shim's line": line}
    # What the glibc stop would cost if it were compiled alone: the rest of the
    # line as a string that only musl compiles (a second compile there).
    prefix = "import os, sys; sys.thread_info.version or "
    if line.startswith(prefix):
        rest = "import os;" + line[len(prefix) :].rstrip("\n")
        variants[TWO_STAGE] = f"import sys;sys.thread_info.version or exec({rest!r})\n"
    variants[ONE_MODULE] = "import _bench_one\n"
    return variants


def _anatomy_venv(base: str, root: Path, content: Optional[str], shim_site: bool) -> B.Venv:
    v = B.Venv(base, root)
    (v.site / "_bench_one.py").write_text(ONE_MODULE_SOURCE)
    (v.site / "_bench_m0.py").write_text(MARKER)
    (v.site / "_bench_m1.py").write_text(MARKER)
    env = B.clean_env()
    B.run([v.python, "-c", "import _bench_one, _bench_m0, _bench_m1"], env)  # their .pyc
    if content is not None:
        (v.site / "x.pth").write_text(content)
    if shim_site:
        # soabi-shim's line on musl: its stamp is current, so it takes the
        # fast path (the stamp's directory is not the site dir: its mtime stays).
        (v.site / "soabi_shim").mkdir(exist_ok=True)
        (v.site / "soabi_shim" / f"_ok.{os.stat(v.site).st_mtime_ns}").write_text("")
    return v


def pth_anatomy(
    work: Path, shim: Path, pythons: dict[str, str], pairs: int, results: dict[str, Any]
) -> tuple[list[list[str]], list[list[str]]]:
    """What one ``.pth`` line costs: venvs differing only in one ``x.pth``.

    On the host, whole ``python -c pass`` starts, round robin.  On every
    interpreter in ``pythons``, the time ``site`` spends on the line's first
    pass, between two marker modules.
    """
    with zipfile.ZipFile(shim) as z:
        line = z.read("soabi_shim-startup.pth").decode()
    variants = _variants(line)
    env = B.clean_env()
    host = {
        label: _anatomy_venv(sys.executable, work / f"pth-host-{i}", content, False)
        for i, (label, content) in enumerate(variants.items())
    }
    times: dict[str, list[int]] = {k: [] for k in variants}
    labels = list(variants)
    for i in range(pairs + 10):
        for label in labels if i % 2 == 0 else labels[::-1]:
            t = B.timed([host[label].python, "-c", "pass"], env)
            if i >= 10:
                times[label].append(t)
    rows = []
    for label in labels:
        c = B.compare(times["no `.pth`"], times[label])
        results[f"pth/{label}"] = {"ns": times[label], **c}
        lo, hi = c["ratio_ci95"]
        rows.append([label, B.med_iqr(c["b"]), f"{c['ratio']:.4f}", f"{lo:.4f} to {hi:.4f}"])
    # In site: the first pass over the line, between the markers, per interpreter.
    inner_labels = [k for k in labels if k != "no `.pth`"]
    inner: dict[str, dict[str, list[int]]] = {}
    for n, (name, base) in enumerate(pythons.items()):
        venvs = {}
        for i, label in enumerate(inner_labels):
            content = f"import _bench_m0\n{variants[label]}import _bench_m1\n"
            venvs[label] = _anatomy_venv(base, work / f"pth-{n}-{i}", content, True)
        got: dict[str, list[int]] = {k: [] for k in inner_labels}
        probe = "import sys; t = sys._bench_t; print(t[1] - t[0])"
        for i in range(min(pairs, 200)):
            for label in inner_labels if i % 2 == 0 else inner_labels[::-1]:
                got[label].append(int(B.run([venvs[label].python, "-c", probe], env).stdout))
        inner[name] = got
        results[f"pth-first-pass/{name}"] = got
    table = []
    for label in inner_labels:
        cells = [label]
        for name in pythons:
            base_med = B.summary(inner[name]["an empty `.pth`"])["median"]
            med = B.summary(inner[name][label])["median"]
            cells.append(f"{med / 1000:.0f} (+{(med - base_med) / 1000:.0f})")
        table.append(cells)
    return rows, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 pairs and 5 heal repetitions, for a quick look")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers (ns) as JSON")
    ap.add_argument("--pairs", type=int, help="interleaved pairs per comparison (300; --quick 50)")
    ap.add_argument("--heal-reps", type=int, help="repetitions of each heal-at-start measurement (20; --quick 5)")
    ap.add_argument("--parts", default="a,b,c,d,heal", help="which parts to run: a, b, c, d, heal (default all)")
    ap.add_argument("--workdir", help="where to make the venvs (default: a new directory in $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    pairs = args.pairs or (50 if args.quick else 300)
    heal_reps = args.heal_reps or (5 if args.quick else 20)
    parts = set(args.parts.split(","))

    info = B.machine()
    work = B.workdir(args.workdir, "soabi-shim-bench-startup-")
    musl = {f: B.find_interpreter(f) for f in ("musl311", "gnu311")}
    for flavour, exe in musl.items():
        info[f"python_{flavour}"] = B.python_version(str(exe)) if exe else None
    print(B.header("soabi-shim: interpreter start-up", info, sys.argv))
    for flavour, exe in musl.items():
        print(f"- {flavour}: {exe} ({info[f'python_{flavour}']})" if exe else f"- {flavour}: not built, skipped")
    print(f"- {pairs} interleaved pairs per row; times in ms: median (interquartile range)\n")
    results: dict[str, Any] = {}
    data: dict[str, Any] = {"machine": info, "pairs": pairs, "results": results}
    try:
        shim = B.build_shim_wheel(work / "wheel")
        deps = B.dependency_wheels(work)
        rows = []
        if "a" in parts:
            trio = make_pair(sys.executable, work, "host", deps, shim)
            rows += startup_variants(f"glibc {info['python'].split()[0]} (host)", trio, pairs, False, results)
        gnu_shim = None
        if "b" in parts:
            for flavour, exe in musl.items():
                if exe is None:
                    continue
                trio = make_pair(str(exe), work, flavour, deps, shim)
                rows += startup_variants(flavour, trio, pairs, True, results)
                if flavour == "gnu311":
                    gnu_shim = trio[2]
        if rows:
            print("## `python -c pass`, without and with soabi-shim installed\n")
            headers = [
                "interpreter",
                "variant",
                "without (ms)",
                "empty `.pth` (ms)",
                "with (ms)",
                "empty `.pth` ratio",
                "ratio (95% interval)",
                "with ÷ empty `.pth`",
                "≤ 1.01 or ≤ 1.005 above the floor",
            ]
            print(B.table(headers, rows))
        if "c" in parts and musl["gnu311"] is not None:
            if gnu_shim is None:
                gnu_shim = make_pair(str(musl["gnu311"]), work, "gnu311", deps, shim)[2]
            rows = heal_cost(gnu_shim, work, heal_reps, results)
            print(f"\n## gnu311: first start after installing N distributions that need an alias ({heal_reps} each)\n")
            headers = ["N", "first start (ms)", "next start (ms)", "difference (ms)", "per distribution (ms)", "ratio"]
            print(B.table(headers, rows))
        if "heal" in parts:
            rows = heal_parts(work, shim, deps, musl, heal_reps * 3, results)
            print(f"\n## (heal) A healing start vs the next start, one new distribution ({heal_reps * 3} pairs)\n")
            headers = [
                "interpreter",
                "healing start (ms)",
                "next start (ms)",
                "paired difference (ms)",
                "≤ 15 ms",
                "modules imported (healing / next)",
                "non-soabi-shim modules only the healing start imports",
            ]
            print(B.table(headers, rows))
        if "d" in parts:
            pythons = {"glibc (host)": sys.executable}
            pythons.update({flavour: str(exe) for flavour, exe in musl.items() if exe is not None})
            rows, inner = pth_anatomy(work, shim, pythons, pairs, results)
            print(f"\n## (d) What a `.pth` line costs (host venvs differing only in one `x.pth`, {pairs} rounds)\n")
            print(B.table(["`x.pth` holds", "`python -c pass` (ms)", "ratio to no `.pth`", "95% interval"], rows))
            print(
                "\nTime `site` spends from the line before to the line after (two marker modules), first pass, "
                "µs, median (+ above an empty `.pth`, i.e. the marker import alone); on musl the stamp is current:\n"
            )
            print(B.table(["`x.pth` holds", *pythons], inner))
    finally:
        B.finish(info, work, keep=args.keep)
    B.write_json(args.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
