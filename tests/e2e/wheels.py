"""Download real musllinux_1_2 x86_64 wheels for the end-to-end tests.

Stdlib only.  The pins all have cp39 AND cp311 musllinux_1_2 wheels; the cp39
ones carry ``-gnu`` extension names (built by CPython 3.9 on Alpine, whose
SOABI says gnu), the cp311 ones ``-musl`` names::

    markupsafe 3.0.4  markupsafe/_speedups.cpython-3X-x86_64-linux-{gnu,musl}.so
    pyyaml 6.0.3      yaml/_yaml.cpython-3X-...so
    msgpack 1.1.2     msgpack/_cmsgpack.cpython-3X-...so
    rpds-py 0.27.1    rpds/rpds.cpython-3X-...so (+ rpds.libs/libgcc_s-*.so.1), Rust
    ujson 5.11.0      ujson.cpython-3X-...so  (top-level module!) + ujson.libs/
                      libstdc++-*.so.6.0.33, libgcc_s-*.so.1, C++ (double-conversion)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PINS: dict[str, str] = {
    "markupsafe": "3.0.4",
    "pyyaml": "6.0.3",
    "msgpack": "1.1.2",
    "rpds-py": "0.27.1",
    "ujson": "5.11.0",
}

# distribution -> (module to import, extension module's dotted name)
IMPORTS: dict[str, tuple] = {
    "markupsafe": ("markupsafe", "markupsafe._speedups"),
    "pyyaml": ("yaml", "yaml._yaml"),
    "msgpack": ("msgpack", "msgpack._cmsgpack"),
    "rpds-py": ("rpds", "rpds.rpds"),
    "ujson": ("ujson", "ujson"),
}

PLATFORM = "musllinux_1_2_x86_64"


def _wheel_prefix(dist: str) -> str:
    return dist.replace("-", "_").lower()


def _find(dest: Path, dist: str, version: str, pyver: str) -> list[Path]:
    tag = "cp" + pyver.replace(".", "")
    prefix = f"{_wheel_prefix(dist)}-{version}-{tag}-{tag}-"
    return sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix) and PLATFORM in p.name)


def download_wheels(pyver: str, dest: Path) -> list[Path]:
    """Download (or reuse from dest) the pinned musllinux wheels for pyver.

    pyver is "3.11" or "3.9".  Returns the wheel paths in PINS order.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    missing = [d for d, v in PINS.items() if not _find(dest, d, v, pyver)]
    if missing:
        host_py = os.environ.get("SOABI_SHIM_HOST_PYTHON") or sys.executable
        cmd = [
            host_py,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--python-version",
            pyver,
            "--implementation",
            "cp",
            "--no-deps",
            "-d",
            str(dest),
        ] + [f"{d}=={PINS[d]}" for d in missing]
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_REQUIRE_VIRTUALENV",)}
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"pip download failed:\n{' '.join(cmd)}\n{r.stdout[-3000:]}")
    out = []
    for d, v in PINS.items():
        found = _find(dest, d, v, pyver)
        if not found:
            raise RuntimeError(f"no {PLATFORM} cp{pyver} wheel for {d}=={v} in {dest}")
        out.append(found[0])
    return out


if __name__ == "__main__":
    import argparse
    import zipfile

    ap = argparse.ArgumentParser()
    ap.add_argument("pyver", choices=["3.9", "3.11"])
    ap.add_argument("dest", type=Path)
    a = ap.parse_args()
    for w in download_wheels(a.pyver, a.dest):
        print(w)
        for n in zipfile.ZipFile(w).namelist():
            if ".so" in n:
                print("   ", n)
