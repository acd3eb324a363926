#!/usr/bin/env python3
"""Cross-build musl-linked CPython 3.11 for aarch64 and armv7 (run under qemu-user).

Stdlib only, Python 3.9+.  Used by the cross end-to-end tests
(``tests/e2e/test_cross.py``) and runnable by hand::

    python tools/build_cross.py --target aarch64-gnu311 [--cache DIR]
    python tools/build_cross.py --all

Needs, on an x86_64 Debian host: Debian's cross compilers
(``gcc-aarch64-linux-gnu``, ``gcc-arm-linux-gnueabihf``), ``qemu-user-static``
with the binfmt_misc interpreters registered (``tools/ci_cross.sh`` does it, as
root), and the host's ``/usr/bin/python3.11`` as the build Python.  Sources
are the same Debian upstream tarballs as ``tools/build_musl_python.py``
(whose helpers this module reuses): musl 1.2.5 (trixie), zlib and libffi
(bookworm), CPython 3.11.2 (bookworm).  No OpenSSL, no SQLite: pip installs
local wheels with ``--no-index`` without ``ssl``.

Per target architecture:

* musl 1.2.5 cross-compiled into a private prefix ``<cross>/musl-1.2.5-<arch>``
  whose loader (``lib/ld-musl-aarch64.so.1``, ``lib/ld-musl-armhf.so.1``) is
  the PT_INTERP of every program linked by the target's ``cc`` wrapper (the
  cross gcc with musl's ``musl-gcc.specs``); its search path is only its own
  ``lib`` (``etc/ld-musl-<arch>.path``).
* zlib and libffi, static and PIC, in ``<cross>/deps-musl-1.2.5-<arch>``.

Targets (SOABI they report):

* ``aarch64-gnu311``  -> ``cpython-311-aarch64-linux-gnu``: what 3.11's
  ``configure`` gives for ``--build=x86_64-linux-gnu --host=aarch64-linux-musl``
  (it rewrites ``-gnu`` to ``-musl`` only when ``$build_os`` is musl), i.e.
  Yocto's and other cross builds from glibc hosts.
* ``aarch64-musl311`` -> ``cpython-311-aarch64-linux-musl``: ``configure``
  patched to key the rewrite on ``$host_os``, as a native build on musl says.
* ``armv7-gnu311``    -> ``cpython-311-arm-linux-gnueabihf``: armv7 hard-float
  cross build (musllinux armv7l wheels say ``arm-linux-musleabihf``).

Every interpreter is configured with ``--prefix=/usr`` and installed with
``DESTDIR`` as an image build does (its ``_sysconfigdata`` says ``/usr``), then
moved into the cache: it finds its standard library from its own location,
so a copy of the prefix as ``ROOT/usr`` is a small target root file system.
The test suites (``test``, ``idlelib``, ``tkinter``) are removed to keep such
copies cheap.  pip is installed by the interpreter itself under qemu
(``-m ensurepip``).

Cache layout (``$SOABI_SHIM_E2E_CACHE`` or ``~/.cache/soabi-shim-e2e``, under
``cross/`` so it never collides with the x86_64 builder)::

    cross/src/, cross/logs/, cross/build/
    cross/toolbin-<arch>/cc          the musl cc wrapper for <arch>
    cross/musl-1.2.5-<arch>/         private musl prefix (.complete)
    cross/deps-musl-1.2.5-<arch>/    zlib, libffi (.complete)
    cross/cpython-<target>-3.11.2-musl1.2.5-r<N>/   interpreter prefix;
                                     .complete holds a JSON of facts
    cross/.lock                      fcntl lock serialising builds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import build_musl_python as base
from tools.build_musl_python import BuildError as BuildError
from tools.build_musl_python import run

MUSL_VERSION = base.MUSL_VERSION
# Bump when the recipe changes in a way that invalidates built interpreters.
RECIPE_REVISION = 1
JOBS = base.JOBS
BUILD_PYTHON = "/usr/bin/python3.11"

# arch: (Debian cross prefix, musl loader arch, qemu binfmt name, ELF e_machine)
ARCHES: dict[str, dict[str, Any]] = {
    "aarch64": dict(cross="aarch64-linux-gnu", ldso_arch="aarch64", binfmt="qemu-aarch64", machine=183),
    "armv7": dict(cross="arm-linux-gnueabihf", ldso_arch="armhf", binfmt="qemu-arm", machine=40),
}

TARGETS: dict[str, dict[str, Any]] = {
    "aarch64-gnu311": dict(
        arch="aarch64",
        host="aarch64-linux-musl",
        patch_triplet=False,
        soabi="cpython-311-aarch64-linux-gnu",
        wheel_platform="musllinux_1_2_aarch64",
    ),
    "aarch64-musl311": dict(
        arch="aarch64",
        host="aarch64-linux-musl",
        patch_triplet=True,
        soabi="cpython-311-aarch64-linux-musl",
        wheel_platform="musllinux_1_2_aarch64",
    ),
    "armv7-gnu311": dict(
        arch="armv7",
        host="arm-linux-musleabihf",
        patch_triplet=False,
        soabi="cpython-311-arm-linux-gnueabihf",
        wheel_platform="musllinux_1_2_armv7l",
    ),
}
PY_SRC = ("python3.11", "bookworm", "3.11.2")
SHORT = "3.11"
DEPS = {"zlib": ("zlib", "bookworm", None), "libffi": ("libffi", "bookworm", None)}
REQUIRED_MODULES = ["zlib", "_ctypes", "_sha256", "_blake2", "_sha3", "json", "venv", "ensurepip", "pyexpat", "_socket"]
# Not built (compile time): nothing pip, venv or soabi-shim needs.
SKIPPED_MODULES = [
    "_decimal",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
    "_multibytecodec",
    "audioop",
    "_curses",
    "_curses_panel",
    "readline",
    "_dbm",
    "_gdbm",
    "_crypt",
    "nis",
    "ossaudiodev",
    "spwd",
    "_tkinter",
    "_elementtree",
    "_lsprof",
    "_xxsubinterpreters",
    "xxlimited",
    "xxlimited_35",
    "_uuid",
    "_zoneinfo",
    "_asyncio",
    "_multiprocessing",
    "_posixshmem",
    "cmath",
    "_statistics",
    "_sqlite3",
]
# Dropped from the installed prefix: the tests copy it as a target root file system.
PRUNE = ["test", "idlelib", "tkinter", "turtledemo", "lib2to3/tests", "unittest/test", "ctypes/test"]


def cross_dir(cache_dir: Optional[Path] = None) -> Path:
    cache = Path(cache_dir) if cache_dir else base.default_cache_dir()
    return cache.expanduser().resolve() / "cross"


def _log(msg: str) -> None:
    print(f"[build_cross {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _fetch(cross: Path, srcpkg: str, suite: str, version: Optional[str]) -> Path:
    """The builder's fetch, retried once: the x86_64 builder may hold apt's lock."""
    try:
        return base.fetch_orig(cross, srcpkg, suite, version)
    except BuildError:
        time.sleep(30)
        return base.fetch_orig(cross, srcpkg, suite, version)


def _nice_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    return base._clean_env(extra)


# --------------------------------------------------------------------------
# musl


def musl_prefix(cross: Path, arch: str) -> Path:
    return cross / f"musl-{MUSL_VERSION}-{arch}"


def ldso_path(cross: Path, arch: str) -> Path:
    return musl_prefix(cross, arch) / "lib" / f"ld-musl-{ARCHES[arch]['ldso_arch']}.so.1"


def toolbin(cross: Path, arch: str) -> Path:
    return cross / f"toolbin-{arch}"


def _write_toolbin(cross: Path, arch: str) -> None:
    tb = toolbin(cross, arch)
    tb.mkdir(parents=True, exist_ok=True)
    p = musl_prefix(cross, arch)
    gcc = shutil.which(f"{ARCHES[arch]['cross']}-gcc")
    if not gcc:
        raise BuildError(f"{ARCHES[arch]['cross']}-gcc not found (apt-get install gcc-{ARCHES[arch]['cross']})")
    # The cross gcc with musl's specs file: musl's headers, crt files, libc and
    # loader.  --print-multiarch would print the glibc triplet: print nothing
    # (CPython's configure compares it with its PLATFORM_TRIPLET).
    # ccache (if installed) shares the objects of the two aarch64 interpreters,
    # which differ only in a few files that see the triplet.
    ccache = "ccache " if shutil.which("ccache") else ""
    w = tb / "cc"
    w.write_text(f"""#!/bin/sh
for a in "$@"; do
  case "$a" in -print-multiarch|--print-multiarch) exit 0;; esac
done
exec {ccache}"{gcc}" "$@" -specs "{p}/lib/musl-gcc.specs"
""")
    w.chmod(0o755)
    for tool in ("ar", "ranlib", "strip", "readelf", "nm", "objdump", "ld"):
        link = tb / tool
        if not link.exists():
            target = shutil.which(f"{ARCHES[arch]['cross']}-{tool}")
            if target:
                link.symlink_to(target)
    # setup.py asks dpkg-architecture for a multiarch dir (glibc headers).
    d = tb / "dpkg-architecture"
    d.write_text("#!/bin/sh\nexit 1\n")
    d.chmod(0o755)


def _check_binfmt(arch: str) -> None:
    entry = Path("/proc/sys/fs/binfmt_misc") / ARCHES[arch]["binfmt"]
    try:
        enabled = entry.read_text().startswith("enabled")
    except OSError:
        enabled = False
    if not enabled:
        raise BuildError(f"{entry} not registered: run tools/ci_cross.sh as root (qemu-user-static + binfmt_misc)")


def build_musl(cross: Path, arch: str) -> Path:
    p = musl_prefix(cross, arch)
    if base._marker_ok(p):
        _write_toolbin(cross, arch)
        return p
    t0 = time.time()
    log = cross / "logs" / f"musl-{MUSL_VERSION}-{arch}.log"
    if log.exists():
        log.unlink()
    orig = _fetch(cross, *base.MUSL_SRC)
    _log(f"building musl {MUSL_VERSION} for {arch} -> {p} (log {log})")
    if p.exists():
        shutil.rmtree(p)
    srcdir = base._extract(orig, cross / "build", f"musl-{MUSL_VERSION}-{arch}")
    ct = ARCHES[arch]["cross"]
    env = _nice_env({"CC": f"{ct}-gcc", "CROSS_COMPILE": f"{ct}-", "CFLAGS": "-O2"})
    run(
        ["./configure", f"--prefix={p}", f"--syslibdir={p}/lib", f"--target={ct}", "--enable-wrapper=gcc"],
        log,
        cwd=srcdir,
        env=env,
    )
    run(["make", f"-j{JOBS}"], log, cwd=srcdir, env=env)
    run(["make", "install"], log, cwd=srcdir, env=env)
    # The target's Linux kernel headers (linux/*.h, asm/*.h) from Debian's cross packages.
    inc = p / "include"
    kinc = Path("/usr") / ct / "include"
    for d in ("linux", "asm", "asm-generic", "mtd"):
        s = kinc / d if (kinc / d).is_dir() else Path("/usr/include") / d
        if s.is_dir() and not (inc / d).exists():
            shutil.copytree(s, inc / d, symlinks=True)
    if not (inc / "asm").is_dir():
        raise BuildError(f"no asm headers for {arch} in {kinc} (linux-libc-dev-*-cross)")
    (p / "etc").mkdir(exist_ok=True)
    (p / "etc" / f"ld-musl-{ARCHES[arch]['ldso_arch']}.path").write_text(f"{p}/lib\n")
    _write_toolbin(cross, arch)
    _check_binfmt(arch)
    hello_c = cross / "build" / f"hello-{arch}.c"
    hello = cross / "build" / f"hello-{arch}"
    hello_c.write_text('#include <stdio.h>\nint main(void){puts("hello musl");return 0;}\n')
    run([str(toolbin(cross, arch) / "cc"), "-O2", "-o", str(hello), str(hello_c)], log, env=env)
    out = subprocess.run([str(hello)], stdout=subprocess.PIPE, text=True).stdout
    interp = base._read_interp(hello)
    want = str(ldso_path(cross, arch))
    if out.strip() != "hello musl" or interp != want:
        raise BuildError(f"musl {arch} smoke test failed: output {out!r}, PT_INTERP {interp!r} (want {want})")
    shutil.rmtree(srcdir, ignore_errors=True)
    base._write_marker(
        p, {"musl": MUSL_VERSION, "ldso": want, "orig": orig.name, "seconds": round(time.time() - t0, 1)}
    )
    _log(f"musl {arch} done in {time.time() - t0:.0f}s")
    return p


# --------------------------------------------------------------------------
# static libraries


def deps_prefix(cross: Path, arch: str) -> Path:
    return cross / f"deps-musl-{MUSL_VERSION}-{arch}"


def _dep_env(cross: Path, arch: str) -> dict[str, str]:
    d = deps_prefix(cross, arch)
    tb = toolbin(cross, arch)
    return _nice_env(
        {
            "PATH": f"{tb}:" + base._clean_env()["PATH"],
            "CC": str(tb / "cc"),
            "AR": str(tb / "ar"),
            "RANLIB": str(tb / "ranlib"),
            "READELF": str(tb / "readelf"),
            "CCACHE_DIR": str(cross / "ccache"),
            "CCACHE_BASEDIR": str(cross / "build"),
            "CCACHE_NOHASHDIR": "1",
            "CFLAGS": "-O2 -fPIC",
            "CPPFLAGS": f"-I{d}/include",
            "LDFLAGS": f"-L{d}/lib",
            "PKG_CONFIG_PATH": f"{d}/lib/pkgconfig",
            "PKG_CONFIG_LIBDIR": f"{d}/lib/pkgconfig",
        }
    )


def build_deps(cross: Path, arch: str) -> Path:
    d = deps_prefix(cross, arch)
    if base._marker_ok(d):
        return d
    t0 = time.time()
    d.mkdir(parents=True, exist_ok=True)
    env = _dep_env(cross, arch)
    host = TARGETS[next(t for t in TARGETS if TARGETS[t]["arch"] == arch)]["host"]
    facts: dict[str, Any] = {}
    for name, (pkg, suite, ver) in DEPS.items():
        stamp = d / f".{name}.done"
        if stamp.is_file():
            facts[name] = stamp.read_text().strip()
            continue
        orig = _fetch(cross, pkg, suite, ver)
        log = cross / "logs" / f"dep-{name}-{arch}.log"
        if log.exists():
            log.unlink()
        _log(f"building {orig.name} for {arch} (log {log})")
        s = base._extract(orig, cross / "build", f"dep-{name}-{arch}")
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
                    "--build=x86_64-linux-gnu",
                    f"--host={host}",
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
        shutil.rmtree(s, ignore_errors=True)
        stamp.write_text(orig.name + "\n")
        facts[name] = orig.name
    facts["seconds"] = round(time.time() - t0, 1)
    base._write_marker(d, facts)
    _log(f"deps {arch} done in {time.time() - t0:.0f}s")
    return d


# --------------------------------------------------------------------------
# CPython


def interpreter_dir(target: str, cache_dir: Optional[Path] = None) -> Path:
    return cross_dir(cache_dir) / f"cpython-{target}-{PY_SRC[2]}-musl{MUSL_VERSION}-r{RECIPE_REVISION}"


def interpreter_path(target: str, cache_dir: Optional[Path] = None) -> Path:
    return interpreter_dir(target, cache_dir) / "bin" / f"python{SHORT}"


def _patch_triplet_host(srcdir: Path) -> None:
    """Key 3.11's ``linux-gnu`` -> ``linux-musl`` rewrite on the host, not the build machine."""
    cfg = srcdir / "configure"
    text = cfg.read_text()
    needle = '  case "$build_os" in\n  linux-musl*)\n    PLATFORM_TRIPLET=`echo "$PLATFORM_TRIPLET" | sed'
    if needle not in text:
        raise BuildError("cannot find the musl PLATFORM_TRIPLET rewrite in 3.11's configure")
    cfg.write_text(text.replace(needle, needle.replace("$build_os", "$host_os"), 1))


def sanity_check(target: str, cache_dir: Optional[Path] = None) -> dict[str, Any]:
    t = TARGETS[target]
    cross = cross_dir(cache_dir)
    py = interpreter_path(target, cache_dir)
    want = str(ldso_path(cross, t["arch"]))
    if not py.is_file():
        raise BuildError(f"{py} does not exist")
    interp = base._read_interp(py)
    if interp != want:
        raise BuildError(f"{py}: PT_INTERP is {interp!r}, expected {want}")
    code = (
        "import json, sys, sysconfig, importlib, importlib.machinery, platform\n"
        f"for m in {REQUIRED_MODULES!r}: importlib.import_module(m)\n"
        "import zlib, ctypes\n"
        "print(json.dumps({'version': sys.version.split()[0],"
        " 'soabi': sysconfig.get_config_var('SOABI'),"
        " 'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'),"
        " 'multiarch': sysconfig.get_config_var('MULTIARCH'),"
        " 'host_gnu_type': sysconfig.get_config_var('HOST_GNU_TYPE'),"
        " 'machine': platform.machine(),"
        " 'ext_suffixes': importlib.machinery.EXTENSION_SUFFIXES,"
        " 'zlib': zlib.ZLIB_VERSION}))\n"
    )
    env = base._clean_env()
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise BuildError(f"{py} sanity check failed:\n{r.stdout}\n{r.stderr}")
    facts: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    if facts["soabi"] != t["soabi"]:
        raise BuildError(f"{py}: SOABI {facts['soabi']!r}, expected {t['soabi']!r}")
    r = subprocess.run(
        [str(py), "-m", "pip", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    if r.returncode != 0:
        raise BuildError(f"{py} -m pip --version failed:\n{r.stdout}")
    facts["pip"] = r.stdout.split()[1]
    facts.update(target=target, python=str(py), pt_interp=interp, musl=MUSL_VERSION, recipe_revision=RECIPE_REVISION)
    return facts


def build_cpython(target: str, cache_dir: Optional[Path] = None) -> Path:
    t = TARGETS[target]
    arch = t["arch"]
    cross = cross_dir(cache_dir)
    prefix = interpreter_dir(target, cache_dir)
    t0 = time.time()
    _write_toolbin(cross, arch)
    orig = _fetch(cross, *PY_SRC)
    d = deps_prefix(cross, arch)
    log = cross / "logs" / f"cpython-{target}.log"
    if log.exists():
        log.unlink()
    _log(f"building CPython {PY_SRC[2]} for {target} -> {prefix} (log {log})")
    if prefix.exists():
        shutil.rmtree(prefix)
    srcdir = base._extract(orig, cross / "build", f"cpython-{target}")
    if t["patch_triplet"]:
        _patch_triplet_host(srcdir)
    env = _dep_env(cross, arch)
    env.update(
        {
            # -O1 without -g: half the compile time of CPython's -O3 -g, on 2 shared cores.
            "OPT": "-DNDEBUG -fwrapv -O1",
            "CFLAGS": "",
            "CPPFLAGS": f"-I{d}/include",
            "LDFLAGS": f"-L{d}/lib",
            "CONFIG_SITE": "",
            "ac_cv_file__dev_ptmx": "yes",
            "ac_cv_file__dev_ptc": "no",
            "ac_cv_buggy_getaddrinfo": "no",
            **{f"py_cv_module_{m}": "n/a" for m in SKIPPED_MODULES},
        }
    )
    run(
        [
            "./configure",
            "--prefix=/usr",
            "--build=x86_64-linux-gnu",
            f"--host={t['host']}",
            f"--with-build-python={BUILD_PYTHON}",
            "--with-ensurepip=no",
            "--without-doc-strings",
            "--disable-test-modules",
        ],
        log,
        cwd=srcdir,
        env=env,
    )
    run(["make", f"-j{JOBS}"], log, cwd=srcdir, env=env)
    # Installed as an image build does (prefix /usr, DESTDIR), then moved:
    # getpath finds the standard library from the executable's location.
    stage = cross / "build" / f"stage-{target}"
    if stage.exists():
        shutil.rmtree(stage)
    run(["make", "install", f"DESTDIR={stage}"], log, cwd=srcdir, env=env)
    (stage / "usr").rename(prefix)
    shutil.rmtree(stage)
    lib = prefix / "lib" / f"python{SHORT}"
    for rel in PRUNE:
        shutil.rmtree(lib / rel, ignore_errors=True)
    py = interpreter_path(target, cache_dir)
    # pip from the bundled wheel, installed by the target interpreter itself under qemu.
    run([str(py), "-m", "ensurepip", "--default-pip"], log, env=base._clean_env({"PYTHONDONTWRITEBYTECODE": "1"}))
    facts = sanity_check(target, cache_dir)
    facts["orig"] = orig.name
    facts["seconds"] = round(time.time() - t0, 1)
    shutil.rmtree(srcdir, ignore_errors=True)
    base._write_marker(prefix, facts)
    _log(f"{target} done in {time.time() - t0:.0f}s: {facts['soabi']} {facts['ext_suffix']}")
    return py


# --------------------------------------------------------------------------
# public API


def can_build(cache_dir: Optional[Path] = None) -> Optional[str]:
    """None if the cross interpreters can be built (or all are cached), else a reason."""
    if all(base._marker_ok(interpreter_dir(t, cache_dir)) for t in TARGETS) and all(
        Path("/proc/sys/fs/binfmt_misc", a["binfmt"]).is_file() for a in ARCHES.values()
    ):
        return None
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        return "cross interpreters are only built on x86_64 Linux"
    for a in ARCHES.values():
        if not shutil.which(f"{a['cross']}-gcc"):
            return f"no {a['cross']}-gcc (tools/ci_cross.sh installs the cross compilers)"
        if not Path("/proc/sys/fs/binfmt_misc", a["binfmt"]).is_file():
            return f"{a['binfmt']} not registered with binfmt_misc (tools/ci_cross.sh, as root)"
    if not Path(BUILD_PYTHON).is_file():
        return f"no {BUILD_PYTHON} to use as the build Python"
    try:
        base._archive_uri()
    except BuildError as e:
        return str(e)
    return None


def read_interp(binary: Path) -> Optional[str]:
    """PT_INTERP of an ELF file (readelf)."""
    return base._read_interp(binary)


def is_built(target: str, cache_dir: Optional[Path] = None) -> bool:
    return base._marker_ok(interpreter_dir(target, cache_dir)) is not None


def ensure_interpreter(target: str, cache_dir: Optional[Path] = None) -> Path:
    """Return bin/python3.11 of a built, sanity-checked target; build if needed."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {sorted(TARGETS)}")
    prefix = interpreter_dir(target, cache_dir)
    if base._marker_ok(prefix):
        return interpreter_path(target, cache_dir)
    cross = cross_dir(cache_dir)
    with base._locked(cross):
        if base._marker_ok(prefix):
            return interpreter_path(target, cache_dir)
        _check_binfmt(TARGETS[target]["arch"])
        base.ensure_host_tools(cross)
        build_musl(cross, TARGETS[target]["arch"])
        build_deps(cross, TARGETS[target]["arch"])
        return build_cpython(target, cache_dir)


def interpreter_facts(target: str, cache_dir: Optional[Path] = None) -> Optional[dict[str, Any]]:
    return base._marker_ok(interpreter_dir(target, cache_dir))


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--target", action="append", choices=sorted(TARGETS))
    g.add_argument("--all", action="store_true")
    ap.add_argument("--cache", type=Path, default=None)
    a = ap.parse_args(argv)
    targets = list(TARGETS) if a.all else a.target
    reason = can_build(a.cache)
    if reason:
        print(f"cannot build: {reason}", file=sys.stderr)
        return 2
    rc = 0
    for tg in targets:
        t0 = time.time()
        try:
            py = ensure_interpreter(tg, a.cache)
        except BuildError as e:
            print(f"{tg}: FAILED\n{e}", file=sys.stderr)
            rc = 1
            continue
        print(f"{tg}: {py} ({time.time() - t0:.0f}s)", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
