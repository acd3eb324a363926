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

The same pins have cp313 musllinux_1_2 wheels (``-musl`` names).  Few projects
publish cp313t (free-threaded 3.13) musllinux wheels; ``PINS_313T`` are ones
that do, all with ``cpython-313t-x86_64-linux-musl`` names::

    markupsafe 3.0.3  (3.0.4 dropped cp313t)
    rpds-py 0.27.1    Rust, + rpds.libs/libgcc_s-*.so.1
    frozenlist 1.8.0  frozenlist/_frozenlist.cpython-313t-x86_64-linux-musl.so (Cython)

(pyyaml, msgpack, ujson and orjson have no cp313t musllinux wheel.)
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

PINS_313T: dict[str, str] = {
    "markupsafe": "3.0.3",
    "rpds-py": "0.27.1",
    "frozenlist": "1.8.0",
}

IMPORTS_313T: dict[str, tuple] = {
    "markupsafe": ("markupsafe", "markupsafe._speedups"),
    "rpds-py": ("rpds", "rpds.rpds"),
    "frozenlist": ("frozenlist", "frozenlist._frozenlist"),
}

PLATFORM = "musllinux_1_2_x86_64"


def pins(pyver: str) -> dict[str, str]:
    """The pinned distributions for pyver ("3.9", "3.11", "3.13" or "3.13t")."""
    return PINS_313T if pyver.endswith("t") else PINS


def imports(pyver: str) -> dict[str, tuple]:
    """distribution -> (module, extension module) of the wheels for pyver."""
    return IMPORTS_313T if pyver.endswith("t") else IMPORTS


def _tags(pyver: str) -> tuple[str, str]:
    """(python tag, abi tag) of pyver: "3.13t" -> ("cp313", "cp313t")."""
    tag = "cp" + pyver.rstrip("t").replace(".", "")
    return tag, tag + ("t" if pyver.endswith("t") else "")


def _wheel_prefix(dist: str) -> str:
    return dist.replace("-", "_").lower()


def _find(dest: Path, dist: str, version: str, pyver: str) -> list[Path]:
    tag, abi = _tags(pyver)
    prefix = f"{_wheel_prefix(dist)}-{version}-{tag}-{abi}-"
    return sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix) and PLATFORM in p.name)


def download_wheels(pyver: str, dest: Path) -> list[Path]:
    """Download (or reuse from dest) the pinned musllinux wheels for pyver.

    pyver is "3.9", "3.11", "3.13" or "3.13t".  Returns the wheel paths in
    ``pins(pyver)`` order.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = pins(pyver)
    missing = [d for d, v in wanted.items() if not _find(dest, d, v, pyver)]
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
            pyver.rstrip("t"),
            "--implementation",
            "cp",
            "--abi",
            _tags(pyver)[1],
            "--no-deps",
            "-d",
            str(dest),
        ] + [f"{d}=={wanted[d]}" for d in missing]
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_REQUIRE_VIRTUALENV",)}
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"pip download failed:\n{' '.join(cmd)}\n{r.stdout[-3000:]}")
    out = []
    for d, v in wanted.items():
        found = _find(dest, d, v, pyver)
        if not found:
            raise RuntimeError(f"no {PLATFORM} cp{pyver} wheel for {d}=={v} in {dest}")
        out.append(found[0])
    return out


if __name__ == "__main__":
    import argparse
    import zipfile

    ap = argparse.ArgumentParser()
    ap.add_argument("pyver", choices=["3.9", "3.11", "3.13", "3.13t"])
    ap.add_argument("dest", type=Path)
    a = ap.parse_args()
    for w in download_wheels(a.pyver, a.dest):
        print(w)
        for n in zipfile.ZipFile(w).namelist():
            if ".so" in n:
                print("   ", n)
