#!/usr/bin/env python3
"""Build real musl-linked CPython interpreters from Debian source packages.

Stdlib only, Python 3.9+.  Used by the end-to-end tests of soabi-shim and
runnable by hand::

    python tools/build_musl_python.py --flavour musl311 [--cache DIR]
    python tools/build_musl_python.py --all [--parallel 2]
    python tools/build_musl_python.py --list

It needs root (it installs build tools with apt and adds a ``deb-src`` entry
for Debian's source archive).  The test suite never runs it on its own: plain
``python -m pytest`` uses the interpreters already in the cache and skips the
end-to-end tests when they are missing; ``SOABI_SHIM_REQUIRE_E2E=1`` (CI,
``tox -e e2e``) makes the fixtures build them and fail when they cannot.

Everything comes from the host's own Debian archive (upstream ``.orig`` tarballs of Debian
source packages, never Debian's patches):

* musl 1.2.5 (trixie) into a private prefix ``<cache>/musl-1.2.5`` whose
  dynamic loader is ``<cache>/musl-1.2.5/lib/ld-musl-x86_64.so.1``.  Bookworm's
  musl 1.2.3 lacks DT_RELR support and current musllinux wheels crash under it;
  the host's ``/lib/ld-musl-x86_64.so.1`` is never touched.
* zlib, libffi, OpenSSL, SQLite (bookworm) as static PIC libraries in
  ``<cache>/deps-musl-1.2.5``.
* CPython 3.13.x (trixie), 3.11.2 (bookworm) and 3.9.2 (bullseye).

The static libraries and musl are built once and shared by every flavour;
with ``--parallel N`` up to N CPython builds run at once (each with
``make -j$SOABI_SHIM_E2E_JOBS``, default 2).

Flavours (SOABI they report):

* ``musl311`` -> ``cpython-311-x86_64-linux-musl`` (native musl build)
* ``gnu311``  -> ``cpython-311-x86_64-linux-gnu`` (musl-linked, configured as
  if for glibc, like a cross-build from a glibc host)
* ``musl39``  -> ``cpython-39-x86_64-linux-musl`` (PLATFORM_TRIPLET patched as
  in Alpine's bpo-43112 patch, no ``-gnu`` fallback; pip upgraded to 26.0.1 so
  it knows musllinux tags)
* ``musl313`` -> ``cpython-313-x86_64-linux-musl`` (native musl build)
* ``musl313t`` -> ``cpython-313t-x86_64-linux-musl`` (free-threaded,
  ``--disable-gil``; no ``.abi3.so`` suffix)

No ``-gnu`` 3.13 exists here: 3.13's configure takes the libc part of the
triplet from ``Misc/platform_triplet.c`` run through the target compiler's
preprocessor (``__GLIBC__`` from ``<features.h>`` gives ``gnu``; musl's
``__DEFINED_va_list`` gives ``musl``), whatever ``--build``/``--host`` say.
``--probe-triplet`` shows it (docs/flavours.md).

Cache layout (default ``$SOABI_SHIM_E2E_CACHE`` or ``~/.cache/soabi-shim-e2e``)::

    src/                      Debian source packages (.dsc, .orig.tar.*)
    build/                    scratch build trees (deleted after success)
    logs/<step>.log           build output of every step
    toolbin/                  cc wrapper, fake dpkg-architecture
    musl-1.2.5/               private musl prefix (.complete marker)
    deps-musl-1.2.5/          zlib, libffi, openssl, sqlite (.complete marker)
    wheels/                   pip wheel used to upgrade musl39's pip
    cpython-<flavour>-<pyver>-musl1.2.5-r<N>/   interpreter prefix;
                              .complete holds a JSON of facts
    .lock                     flock serialising musl + static library builds
    .lock-<flavour>           flock serialising builds of one flavour
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

MUSL_VERSION = "1.2.5"
# Bump when the recipe changes in a way that invalidates built interpreters.
RECIPE_REVISION = 1
JOBS = os.environ.get("SOABI_SHIM_E2E_JOBS", "2")
PIP_FOR_39 = "26.0.1"

SOURCES_FILE = Path("/etc/apt/sources.list.d/soabi-shim-src.sources")
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_SOURCES_LIST = Path("/etc/apt/sources.list")


def _archive_uri() -> str:
    """The Debian archive this host already uses for its ``deb`` entries."""
    if HOST_SOURCES.is_file():
        for line in HOST_SOURCES.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    if HOST_SOURCES_LIST.is_file():
        for line in HOST_SOURCES_LIST.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1] if not parts[1].startswith("[") else parts[2]
    raise BuildError("no Debian archive found in the host's apt sources")


def _sources_content() -> str:
    return (
        "# Added by soabi-shim tools/build_musl_python.py: source packages used to\n"
        "# build musl-linked test interpreters.\n"
        "Types: deb-src\n"
        f"URIs: {_archive_uri()}\n"
        "Suites: bookworm bullseye trixie\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


# Debian packages needed on the host (binary name checked with dpkg-query).
HOST_PACKAGES = ["build-essential", "dpkg-dev", "tcl", "perl", "pkg-config", "xz-utils", "bzip2", "linux-libc-dev"]

# (source package, suite, expected upstream version)
MUSL_SRC = ("musl", "trixie", MUSL_VERSION)
DEP_SRCS = {
    "zlib": ("zlib", "bookworm", None),
    "libffi": ("libffi", "bookworm", None),
    "openssl": ("openssl", "bookworm", None),
    "sqlite3": ("sqlite3", "bookworm", None),
}

FLAVOURS: dict[str, dict] = {
    "musl311": dict(
        srcpkg="python3.11",
        suite="bookworm",
        upstream="3.11.2",
        short="3.11",
        triplet_build="x86_64-linux-musl",
        patch_triplet=False,
        soabi="cpython-311-x86_64-linux-musl",
        pip=None,
    ),
    "gnu311": dict(
        srcpkg="python3.11",
        suite="bookworm",
        upstream="3.11.2",
        short="3.11",
        triplet_build="x86_64-linux-gnu",
        patch_triplet=False,
        soabi="cpython-311-x86_64-linux-gnu",
        pip=None,
    ),
    "musl39": dict(
        srcpkg="python3.9",
        suite="bullseye",
        upstream="3.9.2",
        short="3.9",
        triplet_build="x86_64-linux-musl",
        patch_triplet=True,
        soabi="cpython-39-x86_64-linux-musl",
        pip=PIP_FOR_39,
    ),
    "musl313": dict(
        srcpkg="python3.13",
        suite="trixie",
        upstream="3.13",
        short="3.13",
        triplet_build="x86_64-linux-musl",
        patch_triplet=False,
        soabi="cpython-313-x86_64-linux-musl",
        pip=None,
    ),
    "musl313t": dict(
        srcpkg="python3.13",
        suite="trixie",
        upstream="3.13",
        short="3.13t",
        triplet_build="x86_64-linux-musl",
        patch_triplet=False,
        soabi="cpython-313t-x86_64-linux-musl",
        pip=None,
        configure=["--disable-gil"],
    ),
}

REQUIRED_MODULES = ["zlib", "ctypes", "_ctypes", "sqlite3", "ssl", "hashlib", "json", "venv", "ensurepip"]


class BuildError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# helpers


def default_cache_dir() -> Path:
    env = os.environ.get("SOABI_SHIM_E2E_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/soabi-shim-e2e").expanduser()


def _log(msg: str) -> None:
    print(f"[build_musl_python {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(lines[-n:])


#: CPU seconds (user + system, the command and the children it waited for) spent
#: by ``run`` per log file: the build cost independent of the machine's load.
CPU_SECONDS: dict[str, float] = {}
_cpu_lock = threading.Lock()


def run(cmd: list[str], log: Path, cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None) -> None:
    """Run cmd appending its output to log; raise BuildError with the tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"\n$ (cd {cwd or os.getcwd()}) {' '.join(map(str, cmd))}\n")
        fh.flush()
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=str(cwd) if cwd else None,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
    with _cpu_lock:
        CPU_SECONDS[str(log)] = CPU_SECONDS.get(str(log), 0.0) + usage.ru_utime + usage.ru_stime
    if rc != 0:
        raise BuildError(
            f"command failed (exit {rc}): {' '.join(map(str, cmd))}\nlog: {log}\n--- last lines ---\n{_tail(log)}"
        )


def _clean_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "PYTHON",
                "PIP_",
                "VIRTUAL_ENV",
                "PYENV",
                "CFLAGS",
                "CPPFLAGS",
                "LDFLAGS",
                "CC",
                "CXX",
                "PKG_CONFIG",
                "LD_LIBRARY_PATH",
                "MAKEFLAGS",
            )
        )
    }
    # pyenv shims in PATH would shadow the interpreter being built.
    env["PATH"] = (
        ":".join(p for p in env.get("PATH", "/usr/bin:/bin").split(":") if ".pyenv" not in p) or "/usr/bin:/bin"
    )
    env["LC_ALL"] = "C"
    env["DEBIAN_FRONTEND"] = "noninteractive"
    if extra:
        env.update(extra)
    return env


@contextlib.contextmanager
def _locked(cache: Path, name: str = ".lock") -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / name, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _marker_ok(d: Path) -> Optional[dict]:
    m = d / ".complete"
    if not m.is_file():
        return None
    try:
        return json.loads(m.read_text())
    except (OSError, ValueError):
        return None


def _write_marker(d: Path, facts: dict) -> None:
    tmp = d / ".complete.tmp"
    tmp.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, d / ".complete")


def _read_interp(binary: Path) -> Optional[str]:
    out = subprocess.run(
        ["readelf", "-l", str(binary)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ).stdout
    m = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# apt

_apt_updated = False


def _dpkg_installed(pkg: str) -> bool:
    r = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", pkg],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return r.returncode == 0 and "install ok installed" in r.stdout


def _apt_update(log: Path) -> None:
    global _apt_updated
    if not _apt_updated:
        run(["apt-get", "update", "-q"], log, env=_clean_env())
        _apt_updated = True


def ensure_host_tools(cache: Path) -> None:
    missing = [p for p in HOST_PACKAGES if not _dpkg_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise BuildError(f"missing host packages {missing} and not root")
    log = cache / "logs" / "apt.log"
    _apt_update(log)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], log, env=_clean_env())


def ensure_deb_src(cache: Path) -> None:
    content = _sources_content()
    if SOURCES_FILE.is_file() and SOURCES_FILE.read_text() == content:
        return
    if os.geteuid() != 0:
        raise BuildError(f"{SOURCES_FILE} missing and not root")
    SOURCES_FILE.write_text(content)
    _apt_update(cache / "logs" / "apt.log")


def fetch_orig(cache: Path, srcpkg: str, suite: str, expect_version: Optional[str] = None) -> Path:
    """Return the upstream orig tarball of srcpkg/suite, downloading it."""
    src = cache / "src"
    src.mkdir(parents=True, exist_ok=True)
    pat = re.compile(re.escape(srcpkg) + r"_(?P<v>[^_]+)\.orig\.tar\.(gz|xz|bz2)$")

    def find() -> Optional[Path]:
        stamp = src / f".{srcpkg}_{suite}"
        if stamp.is_file():
            p = src / stamp.read_text().strip()
            if p.is_file():
                return p
        return None

    found = find()
    if found:
        return found
    ensure_deb_src(cache)
    log = cache / "logs" / "apt-source.log"
    before = set(os.listdir(src))
    try:
        run(["apt-get", "source", "-q", "--download-only", f"{srcpkg}/{suite}"], log, cwd=src, env=_clean_env())
    except BuildError:
        _apt_update(cache / "logs" / "apt.log")
        run(["apt-get", "source", "-q", "--download-only", f"{srcpkg}/{suite}"], log, cwd=src, env=_clean_env())
    # Which .dsc belongs to this download?  Parse the apt log tail is fragile;
    # instead pick the .dsc files of srcpkg and their orig tarballs.
    candidates = sorted(
        (p for p in src.iterdir() if pat.match(p.name)),
        key=lambda p: (p.name not in before, p.stat().st_mtime),
        reverse=True,
    )
    if expect_version:
        candidates = [p for p in candidates if pat.match(p.name).group("v").startswith(expect_version)]
    if not candidates:
        raise BuildError(f"no orig tarball for {srcpkg}/{suite} in {src} (expected upstream {expect_version})")
    orig = candidates[0]
    (src / f".{srcpkg}_{suite}").write_text(orig.name + "\n")
    return orig


def _extract(tarball: Path, dest_parent: Path, name: str) -> Path:
    """Extract tarball (single top dir) to dest_parent/name, fresh."""
    dest = dest_parent / name
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest_parent / (name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    subprocess.check_call(["tar", "xf", str(tarball), "-C", str(tmp)])
    entries = list(tmp.iterdir())
    if len(entries) != 1 or not entries[0].is_dir():
        raise BuildError(f"unexpected layout in {tarball}: {entries}")
    entries[0].rename(dest)
    tmp.rmdir()
    return dest


# --------------------------------------------------------------------------
# musl


def musl_prefix(cache: Path) -> Path:
    return cache / f"musl-{MUSL_VERSION}"


def deps_prefix(cache: Path) -> Path:
    return cache / f"deps-musl-{MUSL_VERSION}"


def cc_wrapper(cache: Path) -> Path:
    return cache / "toolbin" / "musl-cc"


def _write_script(path: Path, text: str) -> None:
    """Write an executable script atomically (a parallel build may be running it)."""
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def _write_toolbin(cache: Path) -> None:
    tb = cache / "toolbin"
    tb.mkdir(parents=True, exist_ok=True)
    p = musl_prefix(cache)
    # musl-gcc --print-multiarch prints the host's x86_64-linux-gnu, which
    # makes CPython's configure abort or mis-detect: print nothing instead.
    _write_script(
        tb / "musl-cc",
        f"""#!/bin/sh
for a in "$@"; do
  case "$a" in -print-multiarch|--print-multiarch) exit 0;; esac
done
exec "{p}/bin/musl-gcc" "$@"
""",
    )
    # CPython's setup.py asks dpkg-architecture for the multiarch dir and
    # would then add /usr/include/x86_64-linux-gnu (glibc headers).
    _write_script(tb / "dpkg-architecture", "#!/bin/sh\nexit 1\n")


def build_musl(cache: Path) -> Path:
    p = musl_prefix(cache)
    if _marker_ok(p):
        _write_toolbin(cache)
        return p
    t0 = time.time()
    log = cache / "logs" / f"musl-{MUSL_VERSION}.log"
    if log.exists():
        log.unlink()
    orig = fetch_orig(cache, *MUSL_SRC)
    _log(f"building musl {MUSL_VERSION} -> {p} (log {log})")
    if p.exists():
        shutil.rmtree(p)
    srcdir = _extract(orig, cache / "build", f"musl-{MUSL_VERSION}")
    env = _clean_env({"CC": "gcc", "CFLAGS": "-O2"})
    run(["./configure", f"--prefix={p}", f"--syslibdir={p}/lib"], log, cwd=srcdir, env=env)
    run(["make", f"-j{JOBS}"], log, cwd=srcdir, env=env)
    run(["make", "install"], log, cwd=srcdir, env=env)
    # Linux kernel headers (needed by CPython/OpenSSL for linux/*.h).
    inc = p / "include"
    for d in ("linux", "asm-generic", "mtd"):
        s = Path("/usr/include") / d
        if s.is_dir():
            shutil.copytree(s, inc / d, symlinks=True)
    shutil.copytree("/usr/include/x86_64-linux-gnu/asm", inc / "asm", symlinks=True)
    # Library search path of the private loader: never the host's /lib, /usr/lib.
    (p / "etc").mkdir(exist_ok=True)
    (p / "etc" / "ld-musl-x86_64.path").write_text(f"{p}/lib\n")
    _write_toolbin(cache)
    # smoke test
    hello = cache / "build" / "hello"
    (cache / "build" / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello musl");return 0;}\n')
    run([cc_wrapper(cache), "-O2", "-o", hello, cache / "build" / "hello.c"], log, env=env)
    out = subprocess.run([str(hello)], stdout=subprocess.PIPE, text=True).stdout
    interp = _read_interp(hello)
    ldso = f"{p}/lib/ld-musl-x86_64.so.1"
    if out.strip() != "hello musl" or interp != ldso:
        raise BuildError(f"musl smoke test failed: output {out!r}, PT_INTERP {interp!r} (want {ldso})")
    shutil.rmtree(srcdir, ignore_errors=True)
    facts = {"musl": MUSL_VERSION, "ldso": ldso, "orig": orig.name, "seconds": round(time.time() - t0, 1)}
    facts["cpu_seconds"] = round(CPU_SECONDS.get(str(log), 0.0), 1)
    _write_marker(p, facts)
    _log(f"musl done in {time.time() - t0:.0f}s")
    return p


# --------------------------------------------------------------------------
# static libraries


def _dep_env(cache: Path) -> dict[str, str]:
    d = deps_prefix(cache)
    return _clean_env(
        {
            "PATH": f"{cache / 'toolbin'}:" + _clean_env()["PATH"],
            "CC": str(cc_wrapper(cache)),
            "CFLAGS": "-O2 -fPIC",
            "CPPFLAGS": f"-I{d}/include",
            "LDFLAGS": f"-L{d}/lib",
            "PKG_CONFIG_PATH": f"{d}/lib/pkgconfig",
            "PKG_CONFIG_LIBDIR": f"{d}/lib/pkgconfig",
        }
    )


def build_deps(cache: Path) -> Path:
    d = deps_prefix(cache)
    if _marker_ok(d):
        return d
    t0 = time.time()
    d.mkdir(parents=True, exist_ok=True)
    env = _dep_env(cache)
    facts = {}
    for name, (pkg, suite, ver) in DEP_SRCS.items():
        stamp = d / f".{name}.done"
        if stamp.is_file():
            facts[name] = stamp.read_text().strip()
            continue
        orig = fetch_orig(cache, pkg, suite, ver)
        log = cache / "logs" / f"dep-{name}.log"
        if log.exists():
            log.unlink()
        t1 = time.time()
        _log(f"building {orig.name} (log {log})")
        s = _extract(orig, cache / "build", f"dep-{name}")
        if name == "zlib":
            run(["./configure", f"--prefix={d}", "--static"], log, cwd=s, env=env)
            run(["make", f"-j{JOBS}", "libz.a"], log, cwd=s, env=env)
            run(["make", "install"], log, cwd=s, env=env)
        elif name == "libffi":
            run(
                [
                    "./configure",
                    f"--prefix={d}",
                    f"--libdir={d}/lib",
                    "--disable-shared",
                    "--enable-static",
                    "--with-pic",
                    "--disable-docs",
                    "--disable-multi-os-directory",
                ],
                log,
                cwd=s,
                env=env,
            )
            run(["make", f"-j{JOBS}"], log, cwd=s, env=env)
            run(["make", "install"], log, cwd=s, env=env)
        elif name == "openssl":
            run(
                [
                    "perl",
                    "./Configure",
                    "linux-x86_64",
                    f"--prefix={d}",
                    "--libdir=lib",
                    f"--openssldir={d}/ssl",
                    "no-shared",
                    "no-afalgeng",
                    "no-tests",
                    "no-module",
                    "-fPIC",
                ],
                log,
                cwd=s,
                env=env,
            )
            # Libraries and headers only: CPython needs neither the openssl program nor the docs.
            run(["make", f"-j{JOBS}", "build_libs"], log, cwd=s, env=env)
            run(["make", "install_dev"], log, cwd=s, env=env)
        elif name == "sqlite3":
            run(
                [
                    "./configure",
                    f"--prefix={d}",
                    "--disable-shared",
                    "--enable-static",
                    "--with-pic",
                    "--disable-tcl",
                    "--disable-readline",
                    "--disable-editline",
                    "--enable-threadsafe",
                ],
                log,
                cwd=s,
                env=env,
            )
            run(["make", f"-j{JOBS}", "libsqlite3.la"], log, cwd=s, env=env)
            run(["make", "install"], log, cwd=s, env=env)
        shutil.rmtree(s, ignore_errors=True)
        stamp.write_text(orig.name + "\n")
        facts[name] = orig.name
        _log(f"{name} done in {time.time() - t1:.0f}s")
    facts["seconds"] = round(time.time() - t0, 1)
    facts["cpu_seconds"] = round(sum(CPU_SECONDS.get(str(cache / "logs" / f"dep-{n}.log"), 0.0) for n in DEP_SRCS), 1)
    _write_marker(d, facts)
    return d


# --------------------------------------------------------------------------
# CPython


def interpreter_dir(flavour: str, cache_dir: Path) -> Path:
    f = FLAVOURS[flavour]
    return Path(cache_dir) / f"cpython-{flavour}-{f['upstream']}-musl{MUSL_VERSION}-r{RECIPE_REVISION}"


def interpreter_path(flavour: str, cache_dir: Path) -> Path:
    return interpreter_dir(flavour, cache_dir) / "bin" / f"python{FLAVOURS[flavour]['short']}"


def _patch_triplet_39(srcdir: Path) -> None:
    """bpo-43112 as in Alpine: PLATFORM_TRIPLET x86_64-linux-musl on musl."""
    cfg = srcdir / "configure"
    text = cfg.read_text()
    needle = "  PLATFORM_TRIPLET=`grep -v '^#' conftest.out | grep -v '^ *$' | tr -d ' \t'`\n"
    if needle not in text:
        raise BuildError("cannot find PLATFORM_TRIPLET computation in 3.9 configure")
    text = text.replace(
        needle,
        needle
        + (
            '  case "$build_os" in\n'
            "  linux-musl*)\n"
            "    PLATFORM_TRIPLET=`echo \"$PLATFORM_TRIPLET\" | sed 's/linux-gnu/linux-musl/'`\n"
            "    ;;\n"
            "  esac\n"
        ),
        1,
    )
    cfg.write_text(text)


def _host_pip_wheel(cache: Path, version: str) -> Path:
    wd = cache / "wheels"
    wd.mkdir(parents=True, exist_ok=True)
    found = sorted(wd.glob(f"pip-{version}-*.whl"))
    if found:
        return found[0]
    host_py = os.environ.get("SOABI_SHIM_HOST_PYTHON") or sys.executable
    run(
        [
            host_py,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            wd,
            f"pip=={version}",
        ],
        cache / "logs" / "pip-download.log",
        env=_clean_env({"PATH": os.environ.get("PATH", "")}),
    )
    found = sorted(wd.glob(f"pip-{version}-*.whl"))
    if not found:
        raise BuildError(f"pip {version} wheel not downloaded into {wd}")
    return found[0]


def _patch_ensurepip(prefix: Path, short: str, wheel: Path, version: str) -> None:
    """Make ensurepip (hence ``-m venv``) install the upgraded pip too.

    3.9.2 bundles pip 20.2.3, which knows no musllinux tags, so a venv would
    reject every musllinux wheel.
    """
    ep = prefix / "lib" / f"python{short}" / "ensurepip"
    bundled = ep / "_bundled"
    for old in bundled.glob("pip-*.whl"):
        old.unlink()
    shutil.copy2(wheel, bundled / wheel.name)
    m = re.match(r"pip-[^-]+-([^-]+)-none-any\.whl$", wheel.name)
    if not m:
        raise BuildError(f"unexpected pip wheel name {wheel.name}")
    init = ep / "__init__.py"
    text = init.read_text()
    text, n1 = re.subn(r'^_PIP_VERSION = "[^"]*"', f'_PIP_VERSION = "{version}"', text, flags=re.M)
    text, n2 = re.subn(r'\("pip", _PIP_VERSION, "[^"]*"\)', f'("pip", _PIP_VERSION, "{m.group(1)}")', text)
    if n1 != 1 or n2 != 1:
        raise BuildError(f"cannot patch {init} for pip {version} ({n1}, {n2})")
    init.write_text(text)
    for pyc in (ep / "__pycache__").glob("__init__.*.pyc"):
        pyc.unlink()


def sanity_check(flavour: str, cache_dir: Path) -> dict:
    """Check a built interpreter; return facts or raise BuildError."""
    f = FLAVOURS[flavour]
    cache = Path(cache_dir)
    py = interpreter_path(flavour, cache)
    ldso = f"{musl_prefix(cache)}/lib/ld-musl-x86_64.so.1"
    if not py.is_file():
        raise BuildError(f"{py} does not exist")
    interp = _read_interp(py)
    if interp != ldso:
        raise BuildError(f"{py}: PT_INTERP is {interp!r}, expected {ldso}")
    code = (
        "import json, sys, sysconfig, importlib, importlib.machinery\n"
        f"mods = {REQUIRED_MODULES!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "import ssl, sqlite3, zlib\n"
        "print(json.dumps({'version': sys.version.split()[0],"
        " 'soabi': sysconfig.get_config_var('SOABI'),"
        " 'multiarch': sysconfig.get_config_var('MULTIARCH'),"
        " 'ext_suffixes': importlib.machinery.EXTENSION_SUFFIXES,"
        " 'openssl': ssl.OPENSSL_VERSION, 'sqlite': sqlite3.sqlite_version,"
        " 'zlib': zlib.ZLIB_VERSION}))\n"
    )
    env = _clean_env()
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise BuildError(f"{py} sanity check failed:\n{r.stdout}\n{r.stderr}")
    facts = json.loads(r.stdout.strip().splitlines()[-1])
    if facts["soabi"] != f["soabi"]:
        raise BuildError(f"{py}: SOABI {facts['soabi']!r}, expected {f['soabi']!r}")
    if flavour.startswith("musl") and any("-gnu" in s for s in facts["ext_suffixes"]):
        raise BuildError(f"{py}: EXTENSION_SUFFIXES contain -gnu: {facts['ext_suffixes']}")
    r = subprocess.run(
        [str(py), "-m", "pip", "--version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    if r.returncode != 0:
        raise BuildError(f"{py} -m pip --version failed:\n{r.stdout}")
    facts["pip"] = r.stdout.split()[1]
    if f["pip"] and facts["pip"] != f["pip"]:
        raise BuildError(f"{py}: pip is {facts['pip']}, expected {f['pip']}")
    # A venv made by this interpreter must work and get the same pip.
    with tempfile.TemporaryDirectory(prefix="soabi-venv-") as td:
        vpy = Path(td) / "v" / "bin" / "python"
        r = subprocess.run(
            [str(py), "-m", "venv", str(Path(td) / "v")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        if r.returncode == 0:
            r = subprocess.run(
                [str(vpy), "-m", "pip", "--version"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        if r.returncode != 0:
            raise BuildError(f"{py}: venv check failed:\n{r.stdout}")
        facts["venv_pip"] = r.stdout.split()[1]
        if facts["venv_pip"] != facts["pip"]:
            raise BuildError(f"{py}: venv gets pip {facts['venv_pip']}, base has {facts['pip']}")
    facts.update(flavour=flavour, python=str(py), pt_interp=interp, musl=MUSL_VERSION, recipe_revision=RECIPE_REVISION)
    return facts


def build_cpython(flavour: str, cache: Path) -> Path:
    f = FLAVOURS[flavour]
    prefix = interpreter_dir(flavour, cache)
    t0 = time.time()
    orig = fetch_orig(cache, f["srcpkg"], f["suite"], f["upstream"])
    d = deps_prefix(cache)
    log = cache / "logs" / f"cpython-{flavour}.log"
    if log.exists():
        log.unlink()
    _log(f"building CPython {f['upstream']} flavour {flavour} -> {prefix} (log {log})")
    if prefix.exists():
        shutil.rmtree(prefix)
    srcdir = _extract(orig, cache / "build", f"cpython-{flavour}")
    if f["patch_triplet"]:
        _patch_triplet_39(srcdir)
    env = _dep_env(cache)
    env.update(
        {
            "CFLAGS": "-O2",
            "CPPFLAGS": f"-I{d}/include",
            "LDFLAGS": f"-L{d}/lib",
        }
    )
    b = f["triplet_build"]
    run(
        [
            "./configure",
            f"--prefix={prefix}",
            f"--build={b}",
            f"--host={b}",
            "--with-ensurepip=install",
            f"--with-openssl={d}",
            *f.get("configure", []),
        ],
        log,
        cwd=srcdir,
        env=env,
    )
    run(["make", f"-j{JOBS}"], log, cwd=srcdir, env=env)
    run(["make", "install"], log, cwd=srcdir, env=env)
    py = interpreter_path(flavour, cache)
    if f["pip"]:
        wheel = _host_pip_wheel(cache, f["pip"])
        run(
            [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--upgrade", wheel],
            log,
            env=_clean_env(),
        )
        _patch_ensurepip(prefix, f["short"], wheel, f["pip"])
    facts = sanity_check(flavour, cache)
    facts["orig"] = orig.name
    facts["seconds"] = round(time.time() - t0, 1)
    facts["cpu_seconds"] = round(CPU_SECONDS.get(str(log), 0.0), 1)
    shutil.rmtree(srcdir, ignore_errors=True)
    _write_marker(prefix, facts)
    _log(f"{flavour} done in {time.time() - t0:.0f}s: {facts['soabi']}")
    return py


def probe_triplet(cache_dir: Optional[Path] = None) -> str:
    """Configure CPython 3.13 as a cross build from the glibc host; report its triplet.

    This is the Yocto-style attempt at a ``-gnu``-named musl-linked 3.13:
    ``--build=x86_64-linux-gnu --host=x86_64-linux-musl`` with the musl
    compiler, the musl313 interpreter as the build Python.  Returns the lines
    of configure's output that decide the triplet, and the SOABI it writes.
    """
    cache = (Path(cache_dir) if cache_dir else default_cache_dir()).expanduser().resolve()
    build_python = ensure_interpreter("musl313", cache)
    f = FLAVOURS["musl313"]
    orig = fetch_orig(cache, f["srcpkg"], f["suite"], f["upstream"])
    srcdir = _extract(orig, cache / "build", "cpython-probe-triplet")
    d = deps_prefix(cache)
    env = _dep_env(cache)
    env.update({"CFLAGS": "-O2", "CPPFLAGS": f"-I{d}/include", "LDFLAGS": f"-L{d}/lib"})
    # Answers configure cannot find out by running programs when cross compiling.
    env.update({"ac_cv_file__dev_ptmx": "yes", "ac_cv_file__dev_ptc": "no", "ac_cv_buggy_getaddrinfo": "no"})
    log = cache / "logs" / "probe-triplet.log"
    if log.exists():
        log.unlink()
    cmd = [
        "./configure",
        f"--prefix={cache / 'build' / 'probe-prefix'}",
        "--build=x86_64-linux-gnu",
        "--host=x86_64-linux-musl",
        f"--with-build-python={build_python}",
        f"--with-openssl={d}",
    ]
    try:
        run(cmd, log, cwd=srcdir, env=env)
        makefile = (srcdir / "Makefile").read_text()
        soabi = re.search(r"^SOABI=\s*(\S+)", makefile, re.M)
        result = f"SOABI={soabi.group(1) if soabi else '?'}"
    except BuildError as e:
        result = f"configure failed: {str(e).splitlines()[0]}"
    lines = [
        ln
        for ln in log.read_text(errors="replace").splitlines()
        if ln.startswith(("$ ", "checking build system type", "checking host system type"))
        or "platform triplet" in ln
        or "checking for multiarch" in ln
    ]
    shutil.rmtree(srcdir, ignore_errors=True)
    return "\n".join([*lines, result])


# --------------------------------------------------------------------------
# public API


def can_build(cache_dir: Optional[Path] = None, flavours: Optional[list[str]] = None) -> Optional[str]:
    """None if interpreters can be built (or all are cached), else a reason."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if all(_marker_ok(interpreter_dir(fl, cache)) for fl in flavours or FLAVOURS):
        return None
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        return "musl interpreters are only built on x86_64 Linux"
    if not shutil.which("apt-get"):
        return "apt-get not available (needs a Debian-like host)"
    if os.geteuid() != 0 and not shutil.which("musl-gcc"):
        return "not root and no musl-gcc: cannot install build tools"
    try:
        _archive_uri()
    except BuildError as e:
        return str(e)
    return None


def ensure_interpreter(flavour: str, cache_dir: Optional[Path] = None) -> Path:
    """Return bin/python3.X of a built, sanity-checked flavour; build if needed."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; choose from {sorted(FLAVOURS)}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = cache.expanduser().resolve()
    prefix = interpreter_dir(flavour, cache)
    if _marker_ok(prefix):
        return interpreter_path(flavour, cache)
    # One lock per flavour, so that two flavours build at once; musl and the
    # static libraries they share are built once, under the cache's lock.
    with _locked(cache, f".lock-{flavour}"):
        if _marker_ok(prefix):
            return interpreter_path(flavour, cache)
        ensure_base(cache)
        return build_cpython(flavour, cache)


def prepare(cache_dir: Optional[Path] = None) -> None:
    """Host tools, the deb-src entry (one ``apt-get update``) and every source tarball.

    Run once before parallel builds, so that they never race for apt's locks.
    """
    cache = (Path(cache_dir) if cache_dir else default_cache_dir()).expanduser().resolve()
    ensure_host_tools(cache)
    ensure_deb_src(cache)
    fetch_orig(cache, *MUSL_SRC)
    for pkg, suite, ver in DEP_SRCS.values():
        fetch_orig(cache, pkg, suite, ver)
    for spec in FLAVOURS.values():
        fetch_orig(cache, spec["srcpkg"], spec["suite"], spec["upstream"])


def ensure_base(cache_dir: Optional[Path] = None) -> None:
    """Host tools, musl and the static libraries every flavour links."""
    cache = (Path(cache_dir) if cache_dir else default_cache_dir()).expanduser().resolve()
    if _marker_ok(musl_prefix(cache)) and _marker_ok(deps_prefix(cache)):
        # Built (the markers are written last, atomically): no need to wait for
        # the lock another process may hold while it builds its own flavours.
        ensure_host_tools(cache)
        _write_toolbin(cache)
        return
    with _locked(cache):
        ensure_host_tools(cache)
        build_musl(cache)
        build_deps(cache)


def cached_interpreter(flavour: str, cache_dir: Optional[Path] = None) -> Optional[Path]:
    """bin/python3.X of a flavour already built in the cache, else None (never builds)."""
    cache = (Path(cache_dir) if cache_dir else default_cache_dir()).expanduser().resolve()
    if _marker_ok(interpreter_dir(flavour, cache)):
        return interpreter_path(flavour, cache)
    return None


def interpreter_facts(flavour: str, cache_dir: Optional[Path] = None) -> Optional[dict]:
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return _marker_ok(interpreter_dir(flavour, cache.expanduser().resolve()))


def _build_one(flavour: str, cache: Optional[Path]) -> tuple[str, Optional[Path], str]:
    t0 = time.time()
    try:
        py = ensure_interpreter(flavour, cache)
    except BuildError as e:
        return flavour, None, str(e)
    return flavour, py, f"{time.time() - t0:.0f}s"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Flavours: " + ", ".join(f"{k} ({v['soabi']})" for k, v in FLAVOURS.items()),
    )
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--flavour", action="append", choices=list(FLAVOURS), help="build this flavour (repeatable)")
    g.add_argument("--all", action="store_true", help="build every flavour")
    g.add_argument("--list", action="store_true", help="show each flavour and whether it is built; build nothing")
    g.add_argument(
        "--prepare",
        action="store_true",
        help="install the host's build tools, add the deb-src entry and download every source; build nothing",
    )
    g.add_argument(
        "--probe-triplet",
        action="store_true",
        help="configure CPython 3.13 cross-style (--build=x86_64-linux-gnu --host=x86_64-linux-musl) "
        "and print the platform triplet it chooses",
    )
    ap.add_argument("--cache", type=Path, default=None, help="cache directory (default: %(default)s)")
    ap.add_argument("--parallel", type=int, default=1, metavar="N", help="build up to N flavours at once")
    a = ap.parse_args(argv)
    cache = (a.cache or default_cache_dir()).expanduser().resolve()
    if a.list:
        for fl, spec in FLAVOURS.items():
            facts = interpreter_facts(fl, cache)
            state = f"built in {facts.get('seconds')}s: {interpreter_path(fl, cache)}" if facts else "not built"
            print(f"{fl:9} {spec['soabi']:32} {state}")
        return 0
    if a.probe_triplet:
        print(probe_triplet(cache))
        return 0
    if a.prepare:
        try:
            prepare(cache)
        except BuildError as e:
            print(f"prepare: FAILED\n{e}", file=sys.stderr)
            return 1
        return 0
    flavours = list(FLAVOURS) if a.all else list(dict.fromkeys(a.flavour))
    reason = can_build(cache, flavours)
    if reason:
        print(f"cannot build: {reason}", file=sys.stderr)
        return 2
    rc = 0
    try:
        ensure_base(cache)
    except BuildError as e:
        print(f"musl/static libraries: FAILED\n{e}", file=sys.stderr)
        return 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.parallel)) as pool:
        for fl, py, info in pool.map(lambda fl: _build_one(fl, cache), flavours):
            if py is None:
                print(f"{fl}: FAILED\n{info}", file=sys.stderr)
                rc = 1
            else:
                print(f"{fl}: {py} ({info})", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
