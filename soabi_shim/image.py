"""Interpreter facts from a target root file system (``--root``), read as data.

An image builder (Yocto, Buildroot, ``docker buildx`` for another machine)
assembles a root file system the build host cannot run.  This module learns
what the target interpreter accepts without running anything in it:

* the interpreter is a file ``<prefix>/bin/pythonX.Y[t][d]`` in the image
  (``--python PATH`` names one by its path inside the image when there are
  several);
* its ``_sysconfigdata_*.py`` is *parsed* (``ast.literal_eval`` of
  ``build_time_vars``), never imported or executed: ``EXT_SUFFIX``,
  ``SOABI``, ``MULTIARCH``, ``VERSION``, ``ABIFLAGS``;
* the accepted suffixes are computed as that CPython version computes them
  (``Python/dynload_shlib.c``);
* libc and machine come from the interpreter's ELF file (``PT_INTERP``,
  ``DT_NEEDED``), as for a live interpreter.

Every path is resolved inside ROOT as ``chroot`` would resolve it
(:func:`resolve_in_root`): an absolute symlink in the image resolves against
ROOT and ``..`` never climbs out of it.  Nothing outside ROOT is read; this
module writes nothing.  Bad input raises :class:`~soabi_shim.errors.UsageError`
(exit code 2 in the CLI).
"""

from __future__ import annotations

import ast
import os
import re
import stat
from typing import Any, Optional

from .elf import ElfInfo, libc_of, read_elf
from .errors import ElfError, UsageError
from .facts import PTH_NAME, InterpreterFacts

__all__ = ["accepted_suffixes", "find_interpreters", "image_facts", "read_sysconfigdata", "resolve_in_root"]

#: Symlinks followed while resolving one path (Linux's own limit is 40).
MAX_LINKS = 40
#: Bytes read at most from a ``_sysconfigdata_*.py`` (real ones are ~60 KiB).
MAX_SYSCONFIGDATA = 4 << 20
#: Bytes scanned at most for the interpreter's micro version.
MAX_VERSION_SCAN = 64 << 20
#: Where interpreters live in an image, as paths inside it.
BIN_DIRS = ("/usr/bin", "/usr/local/bin", "/bin")
#: Prefixes whose site directories belong to an interpreter in ``/usr``.
SITE_PREFIXES = ("/usr", "/usr/local")

_INTERPRETER_RE = re.compile(r"^python(?P<major>\d)\.(?P<minor>\d{1,3})(?P<flags>t?d?)$", re.ASCII)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve_in_root(root: str, path: str) -> str:
    """The host path of ``path`` (a path inside the image) with every
    symlink resolved as ``chroot root`` would resolve it.

    An absolute symlink target restarts at ``root``; ``..`` at the top of the
    image stays at the top.  Components that do not exist are kept as they
    are (the caller checks existence); the result is always ``root`` or below
    it.  :class:`UsageError` after :data:`MAX_LINKS` symlinks (a loop).
    """
    base = os.path.abspath(root)
    done: list[str] = []
    todo = _split(path)
    todo.reverse()  # a stack: the next component is last
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(base, *done, part)
        try:
            st = os.lstat(here)
        except OSError:
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise UsageError(f"{path}: too many levels of symbolic links inside {root}")
        target = os.readlink(here)
        if target.startswith("/"):
            done = []
        todo.extend(reversed(_split(target)))
    return os.path.join(base, *done)


def _inside(root: str, path: str) -> str:
    """``path`` (host path below ``root``) as the image names it."""
    rel = os.path.relpath(path, os.path.abspath(root))
    return "/" if rel == "." else "/" + rel.replace(os.sep, "/")


def _read_regular(path: str, limit: int) -> bytes:
    """A bounded read of a regular file (``path`` holds no symlink: resolved)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise UsageError(f"{path}: larger than {limit} bytes")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)[:limit]
    finally:
        os.close(fd)


def read_sysconfigdata(path: str) -> dict[str, Any]:
    """``build_time_vars`` of a ``_sysconfigdata_*.py`` file, parsed as data.

    Only a literal ``build_time_vars = {...}`` assignment is accepted; the
    file is never imported or executed.  :class:`UsageError` when it does not
    parse, has no such dict, or lacks a string ``EXT_SUFFIX``.
    """
    try:
        text = _read_regular(path, MAX_SYSCONFIGDATA).decode("utf-8")
        tree = ast.parse(text, filename=path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read as sysconfig data ({type(exc).__name__})") from None
    found: Any = None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "build_time_vars"
        ):
            try:
                found = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise UsageError(f"{path}: build_time_vars is not a literal") from None
    if not isinstance(found, dict):
        raise UsageError(f"{path}: no build_time_vars dictionary")
    ext = found.get("EXT_SUFFIX")
    if not isinstance(ext, str) or not ext.startswith(".") or not ext.endswith(".so"):
        raise UsageError(f"{path}: no usable EXT_SUFFIX ({ext!r})")
    return found


def _truthy(value: Any) -> bool:
    return value not in (None, 0, "", "0", False)


def accepted_suffixes(version: tuple[int, int], vars: dict[str, Any]) -> tuple[str, ...]:
    """``importlib.machinery.EXTENSION_SUFFIXES`` as CPython ``version``
    built with these ``build_time_vars`` computes it on Linux.

    ``Python/dynload_shlib.c``: ``.<SOABI>.so``, ``.<ALT_SOABI>.so`` (debug
    builds, 3.8+), the 3.15 tagged stable ABI (``.abi3-<triplet>.so``, or
    ``.abi3t-<triplet>.so`` when free-threaded), ``.abi3.so`` (not on a
    free-threaded 3.14+ build; 3.13.5's free-threaded build still lists it, as
    observed on the e2e suite's ``musl313t``), ``.so``.  Other implementations: their
    ``EXT_SUFFIX`` and ``.so``.
    """
    ext = str(vars["EXT_SUFFIX"])
    soabi = vars.get("SOABI")
    if not isinstance(soabi, str) or not soabi.startswith("cpython-"):
        return (ext, ".so") if ext != ".so" else (".so",)
    out = [f".{soabi}.so"]
    alt = vars.get("ALT_SOABI")
    if isinstance(alt, str) and alt:
        out.append(f".{alt}.so")
    free_threaded = _truthy(vars.get("Py_GIL_DISABLED"))
    if version >= (3, 15):
        triplet = vars.get("MULTIARCH") or (soabi.split("-", 2)[2] if soabi.count("-") >= 2 else "")
        if triplet:
            out.append(f".abi3{'t' if free_threaded else ''}-{triplet}.so")
    if not free_threaded or version < (3, 14):
        out.append(".abi3.so")
    out.append(".so")
    if ext not in out:
        out.insert(0, ext)
    return tuple(dict.fromkeys(out))


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def find_interpreters(root: str) -> list[str]:
    """The interpreters in the image, as paths inside it, one per real file."""
    found: dict[str, str] = {}
    for bindir in BIN_DIRS:
        host_dir = resolve_in_root(root, bindir)
        try:
            names = sorted(os.listdir(host_dir))
        except OSError:
            continue
        for name in names:
            if not _INTERPRETER_RE.fullmatch(name):
                continue
            real = resolve_in_root(root, f"{bindir}/{name}")
            if _is_file(real) and real not in found:
                found[real] = f"{bindir}/{name}"
    return list(found.values())


def _pick_interpreter(root: str, python: Optional[str]) -> tuple[str, str]:
    """(path inside the image, resolved host path) of the target interpreter."""
    if python is not None:
        if not python.strip():
            raise UsageError("--python: empty path")
        inside = "/" + python.lstrip("/")
        real = resolve_in_root(root, inside)
        if not _is_file(real):
            raise UsageError(f"{inside}: no such interpreter in {root}")
        return inside, real
    found = find_interpreters(root)
    if not found:
        raise UsageError(f"no Python interpreter in {root} (looked for pythonX.Y in {', '.join(BIN_DIRS)})")
    if len(found) > 1:
        raise UsageError(f"several interpreters in {root}: {', '.join(found)}; name one with --python")
    return found[0], resolve_in_root(root, found[0])


def _lib_dirs(root: str, real_exe: str) -> tuple[str, list[str]]:
    """(the interpreter's name ``pythonX.Y[t]``, its stdlib dirs that exist)."""
    name = os.path.basename(real_exe)
    m = _INTERPRETER_RE.fullmatch(name)
    inside_bin = os.path.dirname(_inside(root, real_exe))
    prefix = os.path.dirname(inside_bin) if os.path.basename(inside_bin) == "bin" else "/usr"
    if m:
        libnames = [f"python{m['major']}.{m['minor']}{'t' if 't' in m['flags'] else ''}"]
    else:  # "python3" as a file: any one stdlib the prefix has
        libnames = []
        for lib in ("lib", "lib64"):
            try:
                entries = os.listdir(resolve_in_root(root, f"{prefix}/{lib}"))
            except OSError:
                continue
            libnames += sorted(e for e in entries if re.fullmatch(r"python\d\.\d{1,3}t?", e))
        libnames = list(dict.fromkeys(libnames))
        if len(libnames) != 1:
            raise UsageError(f"{_inside(root, real_exe)}: cannot tell its version from the name; name pythonX.Y")
    dirs = []
    for lib in ("lib", "lib64"):
        host = resolve_in_root(root, f"{prefix}/{lib}/{libnames[0]}")
        if os.path.isdir(host) and host not in dirs:
            dirs.append(host)
    return libnames[0], dirs


def _sysconfig(root: str, inside_exe: str, real_exe: str) -> tuple[str, dict[str, Any], list[str]]:
    libname, dirs = _lib_dirs(root, real_exe)
    flags = ""
    m = _INTERPRETER_RE.fullmatch(os.path.basename(real_exe))
    if m:
        flags = m["flags"]
    files = []
    for d in dirs:
        files += [os.path.join(d, n) for n in sorted(os.listdir(d)) if re.fullmatch(r"_sysconfigdata_.*\.py", n)]
    if not files:
        raise UsageError(f"{inside_exe}: no _sysconfigdata_*.py in {root} for {libname}")
    parsed = [(f, read_sysconfigdata(f)) for f in files]
    matching = [(f, v) for f, v in parsed if str(v.get("ABIFLAGS", "")).replace("m", "") == flags] or parsed
    suffixes = {str(v["EXT_SUFFIX"]) for _f, v in matching}
    if len(suffixes) > 1:
        names = ", ".join(_inside(root, f) for f, _v in matching)
        raise UsageError(f"{inside_exe}: its sysconfig data disagree ({names}); name the interpreter with --python")
    return libname, matching[0][1], dirs


def _micro_version(root: str, prefix: str, libname: str, binaries: list[str], major_minor: str) -> int:
    """The micro version: ``PY_VERSION`` in ``patchlevel.h`` when the image
    has the headers, else the string in the binary (bounded reads); 0 if
    neither says (it never decides anything: aliases never cross X.Y)."""
    header = resolve_in_root(root, f"{prefix}/include/{libname}/patchlevel.h")
    patterns = [
        (header, re.compile(rb'#define\s+PY_VERSION\s+"' + re.escape(major_minor.encode()) + rb"\.(\d{1,3})")),
    ]
    in_binary = re.compile(rb"\x00" + re.escape(major_minor.encode()) + rb"\.(\d{1,3})(?:[abrc+]\w*)?\x00")
    patterns += [(path, in_binary) for path in binaries]
    for path, pattern in patterns:
        try:
            data = _read_regular(path, MAX_VERSION_SCAN)
        except (OSError, UsageError):
            continue
        m = pattern.search(data)
        if m:
            return int(m.group(1))
    return 0


def _site_dirs(root: str, libname: str, prefix: str) -> tuple[str, ...]:
    prefixes = list(dict.fromkeys([prefix, *SITE_PREFIXES]))
    out: list[str] = []
    for p in prefixes:
        for lib in ("lib", "lib64"):
            for leaf in ("site-packages", "dist-packages"):
                host = resolve_in_root(root, f"{p}/{lib}/{libname}/{leaf}")
                if os.path.isdir(host) and host not in out:
                    out.append(host)
    return tuple(out)


def _implementation(soabi: Any) -> str:
    if isinstance(soabi, str):
        head = soabi.split("-", 1)[0]
        if head.startswith("pypy"):
            return "pypy"
        if head.startswith("graalpy"):
            return "graalpy"
    return "cpython"


def image_facts(root: str, python: Optional[str] = None) -> InterpreterFacts:
    """The facts of the interpreter in the root file system ``root``.

    ``python`` is the interpreter's path inside the image; needed only when
    the image has several.  Nothing in the image is run, imported or written.
    """
    if not root or not os.path.isdir(root):
        raise UsageError(f"--root {root}: no such directory")
    root = os.path.abspath(root)
    inside_exe, real_exe = _pick_interpreter(root, python)
    try:
        elf: ElfInfo = read_elf(real_exe)
    except ElfError as exc:
        raise UsageError(f"{inside_exe}: not an ELF interpreter ({exc})") from None
    libname, vars, _stdlib = _sysconfig(root, inside_exe, real_exe)
    version_text = str(vars.get("VERSION") or "")
    m = re.fullmatch(r"(\d)\.(\d{1,3})", version_text)
    if not m:
        raise UsageError(f"{inside_exe}: its sysconfig data has no usable VERSION ({version_text!r})")
    major, minor = int(m[1]), int(m[2])
    family, evidence = libc_of(elf)
    libpython = []
    for so in (vars.get("INSTSONAME"), vars.get("LDLIBRARY")):
        if isinstance(so, str) and so.startswith("libpython") and so.endswith((".so", ".so.1.0")):
            libpython.append(resolve_in_root(root, f"{vars.get('LIBDIR') or '/usr/lib'}/{so}"))
    if family is None:
        for lib in libpython:  # the interpreter names no libc: its libpython may
            try:
                family, evidence = libc_of(read_elf(lib))
            except ElfError:
                continue
            if family is not None:
                evidence = f"{_inside(root, lib)}: {evidence}"
                break
    inside_bin = os.path.dirname(_inside(root, real_exe))
    prefix = os.path.dirname(inside_bin) if os.path.basename(inside_bin) == "bin" else "/usr"
    micro = _micro_version(root, prefix, libname, [real_exe, *libpython], version_text)
    sites = _site_dirs(root, libname, prefix)
    return InterpreterFacts(
        implementation=_implementation(vars.get("SOABI")),
        version=(major, minor, micro),
        executable=inside_exe,
        soabi=vars.get("SOABI") if isinstance(vars.get("SOABI"), str) else None,
        ext_suffix=str(vars["EXT_SUFFIX"]),
        extension_suffixes=accepted_suffixes((major, minor), vars),
        platform="linux",
        libc=family,
        libc_evidence=evidence,
        libc_version=None,
        elf=elf,
        site_dirs=sites,
        user_site=None,
        startup_hook={
            "pth_files": [os.path.join(d, PTH_NAME) for d in sites if os.path.lexists(os.path.join(d, PTH_NAME))],
            "loaded": False,
            "fallback_installed": False,
            "disabled": False,
            "fallback_only": False,
            "site_disabled": None,
        },
        root=root,
    )
