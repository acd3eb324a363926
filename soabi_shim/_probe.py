"""Stdlib-only probe of an interpreter's facts.

Imported by soabi-shim for the running interpreter, and run as a script by
``--python EXE`` in the other interpreter (which need not have soabi-shim),
so it must stay valid Python 3.9 with no third-party import.
"""

import os
import sys

#: Marks the probe's answer: any other output is not an interpreter's facts.
PROBE_ID = "soabi-shim-probe-1"
#: ``soabi_shim._names``' ``PTH_NAME``, ``PACKAGE_DIR`` and ``STAMP_OK``,
#: repeated here because this file must import nothing from soabi-shim (a
#: test checks that they agree).
PTH_NAME = "soabi_shim-startup.pth"
PACKAGE_DIR = "soabi_shim"
STAMP_OK = "_ok."


def _is_musl() -> bool:
    """The start-up line's own libc test (see ``soabi_shim._start.is_musl``)."""
    return sys.platform == "linux" and not sys.thread_info.version


def _hook_ran(site_dirs: "list[str]") -> bool:
    """The start-up line ran past its glibc test in this process.

    The line leaves no mark when it stops at a current stamp (that is what
    keeps it cheap), so this reads its effects: its slow path saw a site
    directory (``soabi_shim._start``) or installed the fallback; on musl, the
    PEP 829 entry point ran (3.15+), or ``site`` is enabled and one of this
    process's site directories holds the ``.pth`` file and a current stamp,
    which only the hook tests (a stale stamp sends it down the slow path).
    """
    start = sys.modules.get("soabi_shim._start")
    if getattr(start, "SEEN", None) or getattr(sys.modules.get("soabi_shim.fallback"), "INSTALLED", False):
        return True
    if not _is_musl():
        return False
    if getattr(start, "STARTED", False):
        return True
    if sys.flags.no_site:
        return False
    for d in site_dirs:
        try:
            stamp = os.path.join(d, PACKAGE_DIR, STAMP_OK + str(os.stat(d).st_mtime_ns))
        except OSError:
            continue
        if os.path.exists(os.path.join(d, PTH_NAME)) and os.path.exists(stamp):
            return True
    return False


def _extension_suffixes() -> "list[str]":
    """``importlib.machinery.EXTENSION_SUFFIXES``, which is this list, read
    without importing ``importlib.machinery`` (a healing start)."""
    try:
        import _imp

        return list(_imp.extension_suffixes())
    except (ImportError, AttributeError):  # pragma: no cover - not CPython-like
        import importlib.machinery

        return list(importlib.machinery.EXTENSION_SUFFIXES)


def collect(light: bool = False) -> "dict[str, object]":
    """The facts of this interpreter.

    ``light`` (the start-up hook, which knows its site directory): no
    ``sysconfig`` (1-3 ms of a healing start on the musl builds), so no
    ``purelib`` or ``platlib``; the suffix and SOABI come from the import
    system's own list, whose first entry is ``EXT_SUFFIX`` on CPython.
    """
    import site

    try:
        libc_confstr = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc_confstr = None
    user_enabled = bool(site.ENABLE_USER_SITE) if site.ENABLE_USER_SITE is not None else site.check_enableusersite()
    try:
        site_packages = list(site.getsitepackages())
    except AttributeError:  # virtualenv < 20's site.py
        site_packages = []
    suffixes = _extension_suffixes()
    if light:
        ext_suffix = suffixes[0] if suffixes else None
        soabi = ext_suffix[1:-3] if ext_suffix and ext_suffix.count(".") == 2 and ext_suffix.endswith(".so") else None
        paths: dict[str, str] = {}
        gil_disabled = "t" in getattr(sys, "abiflags", "")
    else:
        import sysconfig

        ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
        soabi = sysconfig.get_config_var("SOABI")
        paths = sysconfig.get_paths()
        gil_disabled = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    fallback = bool(getattr(sys.modules.get("soabi_shim.fallback"), "INSTALLED", False))
    user_site = site.getusersitepackages() if user_enabled else None
    return {
        "probe": PROBE_ID,
        "implementation": sys.implementation.name,
        "version": list(sys.version_info[:3]),
        "executable": sys.executable,
        "soabi": soabi,
        "ext_suffix": ext_suffix,
        "multiarch": getattr(sys.implementation, "_multiarch", None),
        "extension_suffixes": suffixes,
        "platform": sys.platform,
        "libc_confstr": libc_confstr,
        "purelib": paths.get("purelib"),
        "platlib": paths.get("platlib"),
        "site_packages": site_packages,
        "user_site": user_site,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "gil_disabled": gil_disabled,
        # The hook ran past its glibc test in this process (musl only);
        # importing soabi-shim's modules does not count.
        "startup_hook_loaded": _hook_ran([*site_packages, *([user_site] if user_site else [])]),
        "fallback_installed": fallback,
    }


if __name__ == "__main__":
    import json

    sys.stdout.write(json.dumps(collect()))
