"""Shared helpers of the benchmark scripts (standard library only, Python 3.9+).

Timing is wall-clock time of real child processes, started with
``posix_spawn`` and reaped with ``waitpid`` (no shell, output to a file or
``/dev/null``), measured with ``time.perf_counter_ns`` in the parent.  A/B
comparisons are paired and interleaved: each iteration runs A and B once,
in the order AB on even and BA on odd iterations, so drift of the machine
and any first-of-a-pair effect fall on both sides alike.  Results are
medians, interquartile ranges and ratios of medians, with a 95% bootstrap
interval for the ratio (resampling the pairs, fixed seed).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests/extension.py (stdlib only)
from tests import extension as _tests_extension  # noqa: E402

E2E_CACHE = Path(os.environ.get("SOABI_SHIM_E2E_CACHE", str(Path.home() / ".cache" / "soabi-shim-e2e")))

# --- environment and processes ------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without PYTHON*, PIP_* and SOABI_SHIM_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "SOABI_SHIM_"))}
    env.update(extra)
    return env


def checkout_env(work: Path, **extra: str) -> dict[str, str]:
    """Environment to run this checkout's ``soabi_shim`` with the running interpreter.

    ``.pyc`` files go to a cache of our own (``PYTHONPYCACHEPREFIX``), never into
    the checkout; the first (warm-up) run writes them.
    """
    return clean_env(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(work / "pycache"), **extra)


def spawn(argv: Sequence[str], env: dict[str, str], stdout: Optional[str] = None) -> tuple[int, int]:
    """Run ``argv`` to completion; return (wall time in ns, exit code).

    stdin and stderr are ``/dev/null``; stdout is ``/dev/null`` or the file ``stdout``.
    """
    exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    if exe is None:
        raise FileNotFoundError(argv[0])
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(exe, list(argv), env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    return t1 - t0, os.waitstatus_to_exitcode(status)


def timed(argv: Sequence[str], env: dict[str, str], *, ok: Sequence[int] = (0,)) -> int:
    """Wall time of one run of ``argv`` in ns; on an unexpected exit code, show why and stop."""
    ns, rc = spawn(argv, env)
    if rc not in ok:
        proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
        sys.exit(f"{shlex.join(argv)} exited {rc}:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return ns


def run(argv: Sequence[str], env: Optional[dict[str, str]] = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a set-up step; its output is shown only if it fails."""
    proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


# --- statistics -------------------------------------------------------------


def summary(xs: Sequence[float]) -> dict[str, float]:
    """n, median, quartiles, IQR, min and mean of ``xs``."""
    q1, _, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0], xs[0], xs[0])
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "min": min(xs),
        "mean": statistics.fmean(xs),
    }


def ratio_ci(a: Sequence[float], b: Sequence[float], *, resamples: int = 2000, seed: int = 1) -> tuple[float, float]:
    """95% bootstrap interval of median(b) / median(a), resampling the pairs."""
    rng = random.Random(seed)
    n = len(a)
    ratios = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median([b[i] for i in idx]) / statistics.median([a[i] for i in idx]))
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Summaries of A and B, the ratio of medians B/A and its interval."""
    sa, sb = summary(a), summary(b)
    lo, hi = ratio_ci(a, b)
    return {"a": sa, "b": sb, "ratio": sb["median"] / sa["median"], "ratio_ci95": [lo, hi]}


def interleave(
    pairs: int, run_a: Callable[[], float], run_b: Callable[[], float], *, warmup: int = 5
) -> tuple[list[float], list[float]]:
    """``pairs`` paired runs of A and B, order AB on even and BA on odd iterations."""
    for _ in range(warmup):
        run_a()
        run_b()
    a: list[float] = []
    b: list[float] = []
    for i in range(pairs):
        if i % 2 == 0:
            a.append(run_a())
            b.append(run_b())
        else:
            b.append(run_b())
            a.append(run_a())
    return a, b


def round_robin(rounds: int, runs: Sequence[Callable[[], float]], *, warmup: int = 5) -> list[list[float]]:
    """``rounds`` rounds of every run, in forward order on even and reverse order
    on odd rounds (the n-way form of :func:`interleave`)."""
    for _ in range(warmup):
        for r in runs:
            r()
    out: list[list[float]] = [[] for _ in runs]
    order = list(range(len(runs)))
    for i in range(rounds):
        for k in order if i % 2 == 0 else order[::-1]:
            out[k].append(runs[k]())
    return out


# --- output -----------------------------------------------------------------


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f}"


def us(ns: float) -> str:
    return f"{ns / 1e3:.0f}"


def med_iqr(s: dict[str, float], fmt: Callable[[float], str] = ms) -> str:
    """``median (q1 to q3)`` in the unit of ``fmt``."""
    return f"{fmt(s['median'])} ({fmt(s['q1'])} to {fmt(s['q3'])})"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def git_state() -> str:
    """The checkout's commit, and whether soabi_shim/ or hook/ differ from it."""
    return git_state_of(str(ROOT))


def git_state_of(checkout: str) -> str:
    """The commit of the checkout at ``checkout``, and whether its soabi_shim/ differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", checkout, "status", "--porcelain", "--", "soabi_shim", "hook", "pyproject.toml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (soabi_shim/ modified)" if dirty else "")


def python_version(exe: str) -> str:
    out = subprocess.run(
        [exe, "-c", "import platform, sysconfig; print(platform.python_version(), sysconfig.get_config_var('SOABI'))"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    return out.stdout.strip() or "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "libc": " ".join(platform.libc_ver()),
        "soabi_shim": git_state(),
        "loadavg_start": os.getloadavg(),
    }


def header(title: str, info: dict[str, Any], argv: Sequence[str]) -> str:
    return (
        f"# {title}\n\n"
        f"- date: {info['date']}; command: `{shlex.join(['python', *argv])}`\n"
        f"- machine: {info['cores']} cores, {info['machine']}, {info['cpu']}, Linux {info['kernel']}, {info['libc']}\n"
        f"- Python: {info['python']}; soabi-shim checkout {info['soabi_shim']}\n"
        f"- load average at start: {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}\n"
    )


def write_json(path: Optional[str], data: dict[str, Any]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
        print(f"\nraw numbers: {path}")


def workdir(arg: Optional[str], prefix: str) -> Path:
    """A fresh work directory (under ``arg`` if given); on the same disk as /tmp by default."""
    if arg:
        Path(arg).mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=arg))
    d.chmod(0o755)
    return d


# --- building things --------------------------------------------------------


def finish(info: dict[str, Any], work: Path, *, keep: bool) -> None:
    """Close a run: the load average at the end, and the work directory kept or removed."""
    info["loadavg_end"] = os.getloadavg()
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in info['loadavg_end'])}")
    if keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def compile_extension(out_dir: Path, name: str, suffix: str) -> Path:
    """A real extension module ``name + suffix``, compiled with gcc for the running
    interpreter (``tests/extension.py``, shared with the test suite)."""
    return _tests_extension.compile_extension(out_dir, name, suffix)


def libc_twin(suffix: str) -> str:
    """``.cpython-311-x86_64-linux-gnu.so`` <-> ``.cpython-311-x86_64-linux-musl.so`` (eabihf etc. kept)."""
    if "-linux-gnu" in suffix:
        return suffix.replace("-linux-gnu", "-linux-musl")
    if "-linux-musl" in suffix:
        return suffix.replace("-linux-musl", "-linux-gnu")
    raise SystemExit(f"no libc twin for {suffix!r}: run this on Linux with a glibc or musl CPython")


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """Install a distribution the way an installer leaves it: its files, and a
    dist-info with METADATA, WHEEL, INSTALLER and a RECORD with hashes and sizes."""
    dist_info = f"{name}-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: soabi-shim-bench\nRoot-Is-Purelib: false\n",
        f"{dist_info}/INSTALLER": b"pip\n",
    }
    rows = []
    digests: dict[int, str] = {}
    for rel, data in {**files, **meta}.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        d = digests.get(id(data))
        if d is None:
            d = digests[id(data)] = digest(data)
        rows.append(f"{rel},{d},{len(data)}\n")
    rows.append(f"{dist_info}/RECORD,,\n")
    (site / dist_info / "RECORD").write_text("".join(rows))
    return site / dist_info


def remove_dist(site: Path, dist_info: Path) -> None:
    """Uninstall: every file its RECORD lists (aliases included), then empty directories."""
    dirs = set()
    for line in (dist_info / "RECORD").read_text().splitlines():
        rel = line.split(",", 1)[0]
        path = site / rel
        if path.is_symlink() or path.exists():
            path.unlink()
        dirs.add(path.parent)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        pycache = d / "__pycache__"
        if pycache.is_dir():
            shutil.rmtree(pycache)
        if d != site and d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def build_shim_wheel(out: Path) -> Path:
    """The soabi-shim wheel of this checkout, as it is now."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)])
    (wheel,) = out.glob("soabi_shim-*.whl")
    return wheel


def dependency_wheels(work: Path, version: str = "3.11") -> list[Path]:
    """soabi-shim's pure-Python dependencies as wheels (the e2e cache's, else downloaded)."""
    cached = [w for w in (E2E_CACHE / "deps" / version).glob("*.whl") if not w.name.startswith("soabi_shim-")]
    if {w.name.split("-")[0] for w in cached} >= {"installer", "packaging", "pluggy"}:
        return sorted(cached)
    dest = work / "deps"
    run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps"),
            *("--python-version", version, "-d", str(dest), "installer>=0.7", "packaging>=22", "pluggy>=1,<2"),
        ]
    )
    return sorted(dest.glob("*.whl"))


def musllinux_wheel(work: Path, dist: str = "markupsafe", version: str = "3.11") -> Path:
    """A real cp311 musllinux wheel of ``dist`` (the e2e cache's, else downloaded)."""
    cached = sorted((E2E_CACHE / "wheels" / version).glob(f"{dist}-*-cp{version.replace('.', '')}-*musllinux*.whl"))
    if cached:
        return cached[-1]
    dest = work / "wheels"
    run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "-d", str(dest)),
            *("--platform", f"musllinux_1_2_{platform.machine()}", "--python-version", version, dist),
        ]
    )
    (wheel,) = dest.glob(f"{dist}-*.whl")
    return wheel


def find_interpreter(flavour: str) -> Optional[Path]:
    """A musl-linked CPython built by ``tools/build_musl_python.py --flavour FLAVOUR``, if cached."""
    for d in sorted(E2E_CACHE.glob(f"cpython-{flavour}-*")):
        if (d / ".complete").exists():
            for exe in sorted((d / "bin").glob("python3.*")):
                if exe.name[len("python") :].replace(".", "").isdigit():
                    return exe
    return None


class Venv:
    """A venv without pip; packages are installed by this interpreter's pip with ``--python``."""

    def __init__(self, base: str, root: Path) -> None:
        self.root = root
        run([base, "-m", "venv", "--without-pip", str(root)], env=clean_env())
        self.python = str(root / "bin" / "python")
        out = run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=clean_env())
        self.site = Path(out.stdout.strip())

    def install(self, *wheels: Path) -> None:
        run(
            [
                *(sys.executable, "-m", "pip", "--python", self.python, "--disable-pip-version-check"),
                *("install", "-q", "--no-index", "--no-deps", *map(str, wheels)),
            ],
            env=clean_env(),
        )

    def stamp(self) -> Optional[str]:
        """The start-up hook's stamp file names (``_ok.<ns>`` / ``_fb.<ns>``), comma-separated, or None."""
        try:
            names = sorted(n for n in os.listdir(self.site / "soabi_shim") if n.startswith(("_ok.", "_fb.")))
        except OSError:
            return None
        return ",".join(names) or None

    def stamp_current(self) -> bool:
        """The start-up hook's stamp says: nothing changed since a heal without problems."""
        return self.stamp() == f"_ok.{os.stat(self.site).st_mtime_ns}"

    def drop_pycache(self) -> None:
        for d in list(self.site.rglob("__pycache__")):
            shutil.rmtree(d)

    def compile_all(self) -> None:
        """``.pyc`` for everything installed (the hook disabled: this start must not heal)."""
        run([self.python, "-m", "compileall", "-q", str(self.site)], env=clean_env(SOABI_SHIM_DISABLE="1"))
