#!/usr/bin/env python3
"""What a ``heal`` and a no-op ``check`` cost on a large site directory.

Set-up: a synthetic site-packages of DISTS distributions (default 1,000), each
with a package ``bench_pkg_NNNNN/`` holding ``__init__.py`` and three real ELF
extension files, and a complete ``*.dist-info`` (METADATA, WHEEL, INSTALLER,
RECORD with hashes and sizes).  The extension files are copies of one module
compiled with gcc for the running interpreter and named with the *libc twin* of
its suffix (``.cpython-311-x86_64-linux-musl.so`` on a glibc CPython), so every
one of them needs an alias, and passes the ELF checks.

Timed, as whole processes started from here (``PYTHONPATH`` = this checkout,
the current directory a neutral one so ``-m soabi_shim`` finds the checkout;
its ``.pyc`` files in a cache of the benchmark's own, written by a warm-up run),
on each file system given with ``--fs`` (default: the disk under ``$TMPDIR``
and the tmpfs ``/dev/shm``):

* ``python -m soabi_shim heal -q SITE`` on a fresh tree (3,000 aliases made,
  1,000 RECORDs rewritten; no fsync, see docs/how-it-works.md);
* ``python -m soabi_shim check -q SITE`` right after, when nothing is left to do;
* ``python -m soabi_shim undo -q SITE`` after that (3,000 aliases and rows removed);
* ``check`` of an empty site directory: the fixed cost (interpreter start,
  imports, interpreter facts);
* the floor, in the same repetition: the same 3,000 symlinks made by bare
  ``os.symlink`` calls in a loop (names listed before the clock starts);
* the floor with RECORD, on its own fresh tree: the same symlinks, and each
  of the 1,000 RECORDs rewritten with its new rows the cheapest atomic way (a
  new file beside it, ``rename`` over it; contents prepared before the clock),
  which is what any tool that records its links pays the disk; ``heal`` minus
  it is soabi-shim's own cost (checks, lock, the swap protocol's exchange);
* the naive workaround on another fresh tree: ``find SITE -name '*-linux-musl.so'
  -exec sh -c 'ln -s ...' sh {} \\;`` (the exact command is printed).  It makes
  the same symlinks, with no RECORD rows and no checks.

Every repetition builds fresh trees and runs ``sync`` before the clock starts,
so no write-back of the set-up is charged to the command timed; heal, the
floor and the naive command rotate which goes first.  The page cache is warm
(the trees were just written), as after an installation.

Then the scaling: heal and check at 250, 1,000 and 4,000 distributions (three
extension files each), time per distribution, and a least-squares line
(fixed cost + cost per distribution).

Targets (issue 13): at 1,000 distributions heal <= 1.0 s on disk and
<= 0.25 s on tmpfs, heal minus the symlink floor <= 0.5 s, a no-op check
<= 0.15 s.

    python benchmarks/bench_heal.py [--quick] [--json FILE] [--profile] [--baseline DIR]

``--baseline DIR`` compares with another checkout of soabi-shim (say
``git worktree add /tmp/base COMMIT``): each repetition also heals and checks a
fresh tree of its own with that code, in rotated order, and a table gives the
ratio of medians (this checkout / baseline) with a 95% bootstrap interval over
the paired repetitions.  On a machine whose speed drifts, the ratio is the
number to trust.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import sysconfig
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench as B

FILES_PER_DIST = 3
HEAL_TARGET_S = {"tmpfs": 0.25}  # by file system type; anything else: 1.0
HEAL_TARGET_DISK_S = 1.0
CHECK_TARGET_S = 0.15


def build_site(site: Path, dists: int, so: bytes, suffix: str) -> None:
    """``dists`` distributions, FILES_PER_DIST copies of ``so`` each, named with ``suffix``."""
    site.mkdir(parents=True)
    for i in range(dists):
        pkg = f"bench_pkg_{i:05d}"
        files = {f"{pkg}/__init__.py": b""}
        for j in range(FILES_PER_DIST):
            files[f"{pkg}/_ext{j}{suffix}"] = so
        B.write_dist(site, f"bench_dist_{i:05d}", "1.0", files)
    os.sync()


def count_links(site: Path) -> int:
    return sum(1 for p in site.glob("bench_pkg_*/*.so") if p.is_symlink())


def naive_argv(site: Path, foreign: str, native: str) -> list[str]:
    """The hand-made workaround: one ``ln -s`` per file, through ``find -exec sh -c``."""
    cut = foreign.index("-linux-")
    f_tail, n_tail = foreign[cut:], native[native.index("-linux-") :]
    script = f'ln -s "${{1##*/}}" "${{1%{f_tail}}}{n_tail}"'
    return ["find", str(site), "-name", f"*{f_tail}", "-exec", "sh", "-c", script, "sh", "{}", ";"]


def links_in(pkg: Path, foreign: str, native: str) -> list[tuple[str, str]]:
    """(target, alias name) of each link a heal makes in the package directory ``pkg``."""
    return [("./" + name, name[: -len(foreign)] + native) for name in sorted(os.listdir(pkg)) if name.endswith(foreign)]


def symlinks_only(site: Path, foreign: str, native: str) -> int:
    """The floor: only the ``symlink(2)`` calls any tool must make (names listed before the clock starts)."""
    pairs = []
    for pkg in sorted(site.glob("bench_pkg_*")):
        pairs += [(target, str(pkg / alias)) for target, alias in links_in(pkg, foreign, native)]
    t0 = time.perf_counter_ns()
    for target, alias in pairs:
        os.symlink(target, alias)
    return time.perf_counter_ns() - t0


def links_and_records(site: Path, foreign: str, native: str) -> int:
    """The floor with RECORD: the same ``symlink(2)`` calls, and each RECORD rewritten
    atomically with the new rows, as any tool that records its links must (a new file
    written beside it, then ``rename(2)`` over it; no lock, no ``fsync``).  Names and
    contents are prepared before the clock starts."""
    work: list[tuple[list[tuple[str, str]], str, str, bytes]] = []
    for info in sorted(site.glob("bench_dist_*.dist-info")):
        pkg = site / info.name.replace("bench_dist_", "bench_pkg_").replace("-1.0.dist-info", "")
        pairs = links_in(pkg, foreign, native)
        links = [(target, str(pkg / alias)) for target, alias in pairs]
        rows = "".join(f"{pkg.name}/{alias},,\n" for _, alias in pairs)
        data = (info / "RECORD").read_bytes() + rows.encode()
        work.append((links, str(info / "RECORD"), str(info / ".RECORD.tmp"), data))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    t0 = time.perf_counter_ns()
    for links, record, tmp, data in work:
        for target, alias in links:
            os.symlink(target, alias)
        fd = os.open(tmp, flags, 0o644)
        os.write(fd, data)
        os.close(fd)
        os.rename(tmp, record)
    return time.perf_counter_ns() - t0


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line through (n, t): (intercept, slope)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions (2 for the scaling), for a quick look")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers (ns) as JSON")
    ap.add_argument("--dists", type=int, default=1000, help="distributions in the main experiment (1000)")
    ap.add_argument("--reps", type=int, help="repetitions of the main experiment (7; --quick 3)")
    ap.add_argument("--sizes", default="250,1000,4000", help="distribution counts of the scaling runs")
    ap.add_argument("--profile", action="store_true", help="also profile one heal and one check with cProfile")
    ap.add_argument(
        "--fs", help="comma-separated directories to build the trees in, one run each (default: $TMPDIR,/dev/shm)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout (say `git worktree add /tmp/base COMMIT`): each repetition also heals and"
        " checks a fresh tree with its code, and the tables give this checkout / baseline, paired",
    )
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 7)
    scale_reps = 2 if args.quick else 5
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    info = B.machine()
    roots = [r for r in (args.fs or f"{os.environ.get('TMPDIR', '/tmp')},/dev/shm").split(",") if r]
    data: dict[str, Any] = {"machine": info, "runs": {}}
    print(B.header("soabi-shim: heal and check", info, sys.argv))
    for root in roots:
        work = B.workdir(root, "soabi-shim-bench-heal-")
        try:
            data["runs"][root] = one_fs(work, args, reps, scale_reps, sizes)
        finally:
            B.finish(info, work, keep=args.keep)
    B.write_json(args.json, data)
    return 0


def one_fs(work: Path, args: argparse.Namespace, reps: int, scale_reps: int, sizes: list[int]) -> dict[str, Any]:
    """The main experiment and the scaling on the file system of ``work``."""
    os.chdir(work)  # `-m soabi_shim` looks in the current directory first
    env = B.checkout_env(work)
    py = sys.executable
    native = sysconfig.get_config_var("EXT_SUFFIX")
    foreign = B.libc_twin(native)
    so = B.compile_extension(work / "ext", "_speed", foreign).read_bytes()
    fs = _fs_type(work)
    heal_target = HEAL_TARGET_S.get(fs, HEAL_TARGET_DISK_S)
    print(f"\n# {fs}: {work}\n")
    print(f"- extension file: {len(so)} bytes, named `*{foreign}`")
    data: dict[str, Any] = {"fs": fs, "suffix": foreign, "so_bytes": len(so)}

    def cli(command: str, site: Path, env: dict[str, str] = env) -> int:
        return B.timed([py, "-m", "soabi_shim", command, "-q", str(site)], env)

    base_env = None
    if args.baseline:
        base_env = B.clean_env(
            PYTHONPATH=os.path.abspath(args.baseline), PYTHONPYCACHEPREFIX=str(work / "pycache-base")
        )
        print(f"- baseline: {args.baseline} ({B.git_state_of(args.baseline)})")

    # Warm-up: writes the .pyc caches, touches every code path once.
    for e in (env, *([base_env] if base_env else [])):
        warm = work / "warm"
        build_site(warm, 20, so, foreign)
        for command in ("heal", "check", "undo"):
            cli(command, warm, e)
        shutil.rmtree(warm)
    empty = work / "empty"
    empty.mkdir()
    cli("check", empty)

    n = args.dists
    naive_cmd = naive_argv(Path("SITE"), foreign, native)
    print(f"- naive command: `{shlex.join(naive_cmd)}`\n")
    keys = ("heal", "check", "undo", "naive", "symlinks", "records", "check_empty", "base_heal", "base_check")
    res: dict[str, list[int]] = {k: [] for k in keys}
    for rep in range(reps):
        a, b, c = work / f"heal-{rep}", work / f"naive-{rep}", work / f"links-{rep}"
        r, d = work / f"records-{rep}", work / f"base-{rep}"
        trees = [a, b, c, r, *([d] if base_env else [])]
        for site in trees:
            build_site(site, n, so, foreign)
        steps = [
            ("heal", partial(cli, "heal", a)),
            ("naive", partial(B.timed, naive_argv(b, foreign, native), B.clean_env())),
            ("symlinks", partial(symlinks_only, c, foreign, native)),
            ("records", partial(links_and_records, r, foreign, native)),
        ]
        if base_env:
            steps.append(("base_heal", partial(cli, "heal", d, base_env)))
        k = rep % len(steps)
        for key, step in steps[k:] + steps[:k]:  # rotate who goes first
            res[key].append(step())
        checks = [
            ("check", partial(cli, "check", a)),
            *([("base_check", partial(cli, "check", d, base_env))] if base_env else []),
        ]
        for key, step in checks if rep % 2 == 0 else checks[::-1]:
            res[key].append(step())
        res["check_empty"].append(cli("check", empty))
        verify(trees, [a, r, *([d] if base_env else [])], n)
        res["undo"].append(cli("undo", a))
        if count_links(a):
            sys.exit(f"{a}: undo left symlinks")
        for site in trees:
            shutil.rmtree(site)
    s = {k: B.summary(v) for k, v in res.items() if v}
    above_floor = [h - f for h, f in zip(res["heal"], res["symlinks"])]
    s["above_floor"] = B.summary(above_floor)
    s["above_records"] = B.summary([h - f for h, f in zip(res["heal"], res["records"])])
    data["main"] = {"dists": n, "files": n * FILES_PER_DIST, "reps": reps, "ns": res, "summary": s}

    print(f"## {n:,} distributions, {n * FILES_PER_DIST:,} extension files, {reps} fresh trees ({fs})\n")
    print("Times in ms: median (interquartile range).\n")
    rows_out = [
        ["`heal` (fresh tree)", B.med_iqr(s["heal"]), f"≤ {heal_target * 1000:.0f}", _met(s["heal"], heal_target)],
        ["`heal` minus the floor (same repetition)", B.med_iqr(s["above_floor"]), "≤ 500", _met(s["above_floor"], 0.5)],
        [
            "`check` after heal (no-op)",
            B.med_iqr(s["check"]),
            f"≤ {CHECK_TARGET_S * 1000:.0f}",
            _met(s["check"], CHECK_TARGET_S),
        ],
        ["`undo` (3 aliases and rows per distribution)", B.med_iqr(s["undo"]), "", ""],
        ["`check` of an empty site dir (fixed cost)", B.med_iqr(s["check_empty"]), "", ""],
        ["naive `find … -exec sh -c 'ln -s …' \\;`", B.med_iqr(s["naive"]), "", ""],
        ["floor: the same symlinks, bare `os.symlink` calls in a loop", B.med_iqr(s["symlinks"]), "", ""],
        [
            "floor with RECORD: the symlinks, and each RECORD rewritten (new file, `rename`)",
            B.med_iqr(s["records"]),
            "",
            "",
        ],
        ["`heal` minus the floor with RECORD (same repetition)", B.med_iqr(s["above_records"]), "", ""],
    ]
    print(B.table(["command", "time (ms)", "target (ms)", "met"], rows_out))
    print(f"\nheal / naive (ratio of medians): **{s['heal']['median'] / s['naive']['median']:.2f}**")
    if base_env:
        data["baseline"] = against_baseline(args.baseline, res)
    if sizes:
        scaling(work, sizes, scale_reps, so, foreign, partial(cli, "heal"), partial(cli, "check"), data)
    if args.profile:
        profile(work, so, foreign, n, env)
    return data


def verify(trees: list[Path], recorded: list[Path], n: int) -> None:
    """Every tree has its aliases, and in each of ``recorded`` the first RECORD lists them."""
    for site in trees:
        got = count_links(site)
        if got != n * FILES_PER_DIST:
            sys.exit(f"{site}: {got} symlinks, expected {n * FILES_PER_DIST}")
    for site in recorded:
        rows = (site / "bench_dist_00000-1.0.dist-info" / "RECORD").read_text().count(",,\n")
        if rows != FILES_PER_DIST + 1:  # the aliases, and RECORD itself
            sys.exit(f"{site}: RECORD has {rows} rows without hash, expected {FILES_PER_DIST + 1}")


def against_baseline(baseline: str, res: dict[str, list[int]]) -> dict[str, Any]:
    """Print and return this checkout's heal and check against the baseline's, paired by repetition."""
    out: dict[str, Any] = {"dir": baseline}
    print(f"\nAgainst the baseline ({baseline}), the same repetitions, paired:\n")
    rows = []
    for key in ("heal", "check"):
        cmp = B.compare(res["base_" + key], res[key])
        out[key] = cmp
        lo, hi = cmp["ratio_ci95"]
        rows.append(
            [f"`{key}`", B.med_iqr(cmp["a"]), B.med_iqr(cmp["b"]), f"{cmp['ratio']:.3f} ({lo:.3f} to {hi:.3f})"]
        )
    print(B.table(["command", "baseline (ms)", "this checkout (ms)", "ratio (95%)"], rows))
    return out


def scaling(
    work: Path,
    sizes: list[int],
    reps: int,
    so: bytes,
    foreign: str,
    heal: Callable[[Path], int],
    check: Callable[[Path], int],
    data: dict[str, Any],
) -> None:
    """heal and check at several sizes; rep-major, the order of the sizes rotated each repetition."""
    scale: dict[int, dict[str, list[int]]] = {m: {"heal": [], "check": []} for m in sizes}
    for rep in range(reps):
        for m in sizes[rep % len(sizes) :] + sizes[: rep % len(sizes)]:
            site = work / f"scale-{m}"
            build_site(site, m, so, foreign)
            scale[m]["heal"].append(heal(site))
            scale[m]["check"].append(check(site))
            if count_links(site) != m * FILES_PER_DIST:
                sys.exit(f"{site}: wrong number of symlinks")
            shutil.rmtree(site)
    out: dict[str, Any] = {
        str(m): {"ns": v, "summary": {k: B.summary(x) for k, x in v.items()}} for m, v in scale.items()
    }
    data["scaling"] = out
    print(f"\n## Scaling ({FILES_PER_DIST} extension files per distribution, {reps} fresh trees each)\n")
    rows = []
    for m in sizes:
        h, c = B.summary(scale[m]["heal"]), B.summary(scale[m]["check"])
        rows.append(
            [f"{m:,}", B.med_iqr(h), f"{h['median'] / m / 1000:.0f}", B.med_iqr(c), f"{c['median'] / m / 1000:.0f}"]
        )
    print(B.table(["distributions", "heal (ms)", "heal µs/dist", "check (ms)", "check µs/dist"], rows))
    if len(sizes) > 1:
        print()
        for what in ("heal", "check"):
            b0, b1 = fit([(m, statistics.median(scale[m][what])) for m in sizes])
            out[f"{what}_fit"] = {"fixed_ns": b0, "per_dist_ns": b1}
            print(f"- {what}: least-squares line {b0 / 1e6:.0f} ms + {b1 / 1e3:.0f} µs per distribution")


def _met(s: dict[str, float], target_s: float) -> str:
    """Whether the median is within the target (in seconds)."""
    return "yes" if s["median"] <= target_s * 1e9 else "**no**"


def _fs_type(path: Path) -> str:
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def profile(work: Path, so: bytes, foreign: str, n: int, env: dict[str, str]) -> None:
    """Where the time of one heal and one check goes (cProfile, in the child)."""
    import pstats

    site = work / "profile"
    build_site(site, n, so, foreign)
    for command in ("heal", "check"):
        out = work / f"{command}.prof"
        B.timed([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "soabi_shim", command, "-q", str(site)], env)
        print(f"\n## cProfile of `{command}` ({n:,} distributions), top 15 by internal time\n\n```text")
        sys.stdout.flush()
        pstats.Stats(str(out), stream=sys.stdout).sort_stats("tottime").print_stats(15)
        print("```")
    shutil.rmtree(site)


if __name__ == "__main__":
    sys.exit(main())
