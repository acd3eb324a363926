#!/usr/bin/env python3
"""What an import served by the import fallback costs, against a native import.

Two otherwise identical venvs of the gnu311 interpreter (a musl-linked CPython
3.11 that says ``-gnu``, built by ``tools/build_musl_python.py``), each
with soabi-shim (wheel of this checkout), its dependencies and the real
markupsafe cp311 musllinux wheel, whose extension is named
``_speedups.cpython-311-x86_64-linux-musl.so``:

A. healed: the start-up hook made the alias ``…-linux-gnu.so -> ./…-linux-musl.so``
   and its stamp is current, so the hook stops after a ``stat`` and a read, and
   the extension loads natively, by the alias's name;
B. the alias removed again (``python -m soabi_shim undo``), so the site
   directory changed since the stamp; every start imports the small
   ``soabi_shim._start``, which (with ``SOABI_SHIM_FALLBACK_ONLY=1``) installs
   ``soabi_shim.fallback`` and writes nothing; the extension is found by its
   ``-musl`` name and loaded by the fallback's loader after its ELF check.

Both run with ``SOABI_SHIM_FALLBACK_ONLY=1``.  Each run is a fresh process that
times ``import markupsafe._speedups`` in-process with ``time.perf_counter_ns``
(this runs ``markupsafe/__init__.py``, which imports the extension); the
parent times the whole process.  A second row pre-imports what
``markupsafe/__init__.py`` needs from the standard library (``typing``,
``string``, ``collections.abc``) before the clock starts, so the import timed is
little more than finding and loading the extension.  Both with ``.pyc`` files
present and with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` in the
venvs.  Each run's loader and file are checked first, and B's site directory is
checked to be unchanged afterwards.

Pairs are interleaved (AB, BA, ...); median, interquartile range, ratio of
medians (B/A) with a 95% bootstrap interval.  Target: in-process ratio <= 1.1.

    python benchmarks/bench_fallback.py [--quick] [--json FILE]

``--host``: on this glibc host instead (no musl build needed): a gcc-built
extension named for musl in venv B, the same file under the native name in
venv A; B's process runs the hook's slow path as the ``.pth`` line would
(``soabi_shim._start.run`` with the libc decision patched to musl and
``SOABI_SHIM_FALLBACK_ONLY=1``), A's the same code with ``SOABI_SHIM_DISABLE=1``
(the hook stops at once).  The in-process time covers everything the
fallback adds: importing ``soabi_shim._start`` and ``soabi_shim.fallback``,
installing the path hook, and the ELF check at load.

    python benchmarks/bench_fallback.py --host [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench as B

TARGET = 1.1
TIMED = (
    "import time\n"
    "t0 = time.perf_counter_ns()\n"
    "import markupsafe._speedups\n"
    "t1 = time.perf_counter_ns()\n"
    "import sys\n"
    "sys.stdout.write(str(t1 - t0))\n"
)
PRELOAD = "import typing, string, collections.abc\n"
PROBE = (
    "import markupsafe, markupsafe._speedups as m\n"
    "assert markupsafe.escape('<') == '&lt;'\n"
    "print(type(m.__spec__.loader).__name__, m.__file__)\n"
)


def measure(python: str, code: str, env: dict[str, str], out: Path) -> tuple[int, int]:
    """(in-process import ns, whole-process ns) of one fresh process."""
    wall, rc = B.spawn([python, "-c", code], env, stdout=str(out))
    if rc != 0:
        B.timed([python, "-c", code], env)  # shows the error
    return int(out.read_text()), wall


def pairs_of(n: int, a: B.Venv, b: B.Venv, code: str, env: dict[str, str], work: Path) -> dict[str, list[int]]:
    res: dict[str, list[int]] = {"a_import": [], "b_import": [], "a_process": [], "b_process": []}
    out = work / "out.txt"
    for _ in range(5):
        measure(a.python, code, env, out)
        measure(b.python, code, env, out)
    for i in range(n):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            imp, wall = measure((a if side == "a" else b).python, code, env, out)
            res[f"{side}_import"].append(imp)
            res[f"{side}_process"].append(wall)
    return res


HOST_TIMED = (
    "import time\n"
    "t0 = time.perf_counter_ns()\n"
    "import soabi_shim._start as s\n"
    "s.is_musl = lambda: True\n"
    "s.run({site!r})\n"
    "import demo._speed\n"
    "t1 = time.perf_counter_ns()\n"
    "import sys\n"
    "sys.stdout.write(str(t1 - t0))\n"
)


def host_main(pairs: int, work: Path, results: dict[str, Any]) -> None:
    import sysconfig

    native = str(sysconfig.get_config_var("EXT_SUFFIX"))
    twin = B.libc_twin(native)
    so = B.compile_extension(work / "ext", "_speed", twin).read_bytes()
    wheels = [*B.dependency_wheels(work), B.build_shim_wheel(work / "wheel")]
    a, b = B.Venv(sys.executable, work / "native"), B.Venv(sys.executable, work / "fallback")
    for v in (a, b):
        v.install(*wheels)
    B.write_dist(a.site, "demo", "1.0", {"demo/__init__.py": b"", f"demo/_speed{native}": so})
    B.write_dist(b.site, "demo", "1.0", {"demo/__init__.py": b"", f"demo/_speed{twin}": so})
    rows = []
    for variant in ("pyc", "no-pyc"):
        env_a = B.clean_env(SOABI_SHIM_DISABLE="1")
        env_b = B.clean_env(SOABI_SHIM_FALLBACK_ONLY="1")
        if variant == "pyc":
            a.compile_all()
            b.compile_all()
        else:
            for env in (env_a, env_b):
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            a.drop_pycache()
            b.drop_pycache()
        out = work / "out.txt"
        res: dict[str, list[int]] = {"a_import": [], "b_import": [], "a_process": [], "b_process": []}
        for i in range(pairs + 5):
            for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
                v, env = (a, env_a) if side == "a" else (b, env_b)
                imp, wall = measure(v.python, HOST_TIMED.format(site=str(v.site)), env, out)
                if i >= 5:
                    res[f"{side}_import"].append(imp)
                    res[f"{side}_process"].append(wall)
        cmp_imp = B.compare(res["a_import"], res["b_import"])
        proc = B.compare(res["a_process"], res["b_process"])
        results[f"host/{variant}"] = {"ns": res, "import": cmp_imp, "process": proc}
        extra = cmp_imp["b"]["median"] - cmp_imp["a"]["median"]
        rows.append(
            [
                ".pyc present" if variant == "pyc" else "no `.pyc`",
                B.med_iqr(cmp_imp["a"], B.us),
                B.med_iqr(cmp_imp["b"], B.us),
                f"{extra / 1e3:.0f}",
                "yes" if extra <= 300e3 else "**no**",
                f"{B.ms(proc['b']['median'] - proc['a']['median'])} ({proc['ratio']:.3f})",
            ]
        )
        print(f"  host/{variant}: fallback extra {extra / 1e3:.0f} µs in-process", file=sys.stderr)
    print("## glibc host: hook slow path + fallback import vs. a native import (µs, in-process)\n")
    headers = ["variant", "A native (µs)", "B fallback (µs)", "B - A (µs)", "≤ 300 µs", "process B - A (ms) (ratio)"]
    print(B.table(headers, rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", action="store_true", help="measure on this glibc host (see above)")
    ap.add_argument("--quick", action="store_true", help="50 pairs, for a quick look")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers (ns) as JSON")
    ap.add_argument("--pairs", type=int, help="interleaved pairs per row (200; --quick 50)")
    ap.add_argument("--workdir", help="where to make the venvs (default: a new directory in $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    pairs = args.pairs or (50 if args.quick else 200)

    info = B.machine()
    if args.host:
        work = B.workdir(args.workdir, "soabi-shim-bench-fallback-")
        print(B.header("soabi-shim: the import fallback (glibc host)", info, sys.argv))
        results: dict[str, Any] = {}
        try:
            host_main(pairs, work, results)
        finally:
            B.finish(info, work, keep=args.keep)
        B.write_json(args.json, {"machine": info, "pairs": pairs, "results": results})
        return 0
    exe = B.find_interpreter("gnu311")
    if exe is None:
        sys.exit("gnu311 is not built: python tools/build_musl_python.py --flavour gnu311")
    info["python_gnu311"] = B.python_version(str(exe))
    work = B.workdir(args.workdir, "soabi-shim-bench-fallback-")
    print(B.header("soabi-shim: the import fallback", info, sys.argv))
    print(f"- gnu311: {exe} ({info['python_gnu311']})")
    results = {}
    data: dict[str, Any] = {"machine": info, "pairs": pairs, "results": results}
    try:
        wheels = [*B.dependency_wheels(work), B.build_shim_wheel(work / "wheel"), B.musllinux_wheel(work)]
        print(f"- markupsafe: {wheels[-1].name}; {pairs} interleaved pairs per row\n")
        native, fallback = B.Venv(str(exe), work / "native"), B.Venv(str(exe), work / "fallback")
        heal_env = B.clean_env()
        for v in (native, fallback):
            v.install(*wheels)
            B.timed([v.python, "-c", "pass"], heal_env)  # the hook heals: alias made, stamp written
            if not v.stamp_current():
                sys.exit(f"{v.site}: not healed at the first start (stamp {v.stamp()!r})")
        B.run([fallback.python, "-m", "soabi_shim", "undo", "-q"], B.clean_env(SOABI_SHIM_DISABLE="1"))
        rows = []
        for variant in ("pyc", "no-pyc"):
            env = B.clean_env(SOABI_SHIM_FALLBACK_ONLY="1")
            if variant == "pyc":
                native.compile_all()
                fallback.compile_all()
            else:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                native.drop_pycache()
                fallback.drop_pycache()
            verify(native, fallback, env)
            before = site_state(fallback)
            for preload in (False, True):
                code = (PRELOAD if preload else "") + TIMED
                res = pairs_of(pairs, native, fallback, code, env, work)
                imp = B.compare(res["a_import"], res["b_import"])
                proc = B.compare(res["a_process"], res["b_process"])
                key = f"{variant}/{'preloaded' if preload else 'plain'}"
                results[key] = {"ns": res, "import": imp, "process": proc}
                lo, hi = imp["ratio_ci95"]
                rows.append(
                    [
                        ".pyc present" if variant == "pyc" else "no `.pyc`",
                        "stdlib pre-imported" if preload else "`import markupsafe._speedups`",
                        B.med_iqr(imp["a"], B.us),
                        B.med_iqr(imp["b"], B.us),
                        f"{imp['ratio']:.2f} ({lo:.2f} to {hi:.2f})",
                        "yes" if imp["ratio"] <= TARGET else "**no**",
                        f"{B.ms(proc['a']['median'])} / {B.ms(proc['b']['median'])}",
                        f"{B.ms(proc['b']['median'] - proc['a']['median'])} ({proc['ratio']:.3f})",
                    ]
                )
                print(f"  {key}: import ratio {imp['ratio']:.2f}", file=sys.stderr)
            verify(native, fallback, env)
            if site_state(fallback) != before:
                sys.exit(f"{fallback.site}: something was written while measuring")
        print("## In-process import time (µs) and whole-process time (ms): A native, B through the fallback\n")
        headers = [
            "variant",
            "timed",
            "A native (µs)",
            "B fallback (µs)",
            "ratio B/A (95%)",
            "≤ 1.1",
            "process A / B (ms)",
            "process B - A (ms) (ratio)",
        ]
        print(B.table(headers, rows))
    finally:
        B.finish(info, work, keep=args.keep)
    B.write_json(args.json, data)
    return 0


def verify(native: B.Venv, fallback: B.Venv, env: dict[str, str]) -> None:
    """A loads the alias natively with its stamp current; B loads the -musl file through the fallback."""
    a = B.run([native.python, "-c", PROBE], env).stdout.split()
    b = B.run([fallback.python, "-c", PROBE], env).stdout.split()
    if not (a[0] == "ExtensionFileLoader" and a[1].endswith("-linux-gnu.so") and native.stamp_current()):
        sys.exit(f"A is not native: {a}, stamp {native.stamp()!r}")
    if not (b[0] == "TwinExtensionLoader" and b[1].endswith("-linux-musl.so")):
        sys.exit(f"B is not served by the fallback: {b}")
    if fallback.stamp_current():
        sys.exit("B's stamp is current: its hook would stop before installing the fallback")


def site_state(v: B.Venv) -> tuple[int, str, list[str]]:
    pkg = v.site / "markupsafe"
    return os.stat(v.site).st_mtime_ns, v.stamp() or "", sorted(os.listdir(pkg))


if __name__ == "__main__":
    sys.exit(main())
