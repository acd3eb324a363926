"""Interpreter facts: what the running (or another) interpreter accepts,
which libc it really runs on, and where its site directories are.

The libc is read from the interpreter's own ELF file (``PT_INTERP`` /
``DT_NEEDED``), never inferred from ``SOABI``, which says ``-gnu`` on musl
for CPython <= 3.10 and for cross-built 3.11/3.12.
"""

from __future__ import annotations

import os
import sys

from . import _probe
from ._names import DISABLE_ENV, FALLBACK_ONLY_ENV
from ._plain import Frozen
from .elf import libc_of, read_elf
from .errors import ElfError, InterpreterError, SuffixError, UsageError
from .suffixes import parse_suffix

# No typing, subprocess, json or re at run time: a healing start gathers the
# running interpreter's facts; only asking another interpreter runs a probe.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

    from .elf import ElfInfo
    from .suffixes import ExtSuffix

__all__ = ["InterpreterFacts", "gather_facts"]

PTH_NAME = "soabi_shim-startup.pth"


class InterpreterFacts(Frozen):
    """Everything the pipeline needs to know about one interpreter."""

    _fields = (
        "implementation",
        "version",
        "executable",
        "soabi",
        "ext_suffix",
        "extension_suffixes",
        "platform",
        "libc",
        "libc_evidence",
        "libc_version",
        "elf",
        "site_dirs",
        "user_site",
        "startup_hook",
        "root",
    )
    __slots__ = _fields
    implementation: str
    version: tuple[int, int, int]
    executable: str
    soabi: Optional[str]
    ext_suffix: Optional[str]
    extension_suffixes: tuple[str, ...]
    platform: str
    libc: Optional[str]  # "glibc", "musl" or None (unknown)
    libc_evidence: str
    libc_version: Optional[str]
    elf: Optional[ElfInfo]
    site_dirs: tuple[str, ...]
    user_site: Optional[str]
    startup_hook: dict[str, Any]
    #: The target root file system (``--root``) the facts were read from, as
    #: data; None for an interpreter that was asked (this one or ``--python``).
    root: Optional[str]

    def __init__(
        self,
        implementation: str,
        version: tuple[int, int, int],
        executable: str,
        soabi: Optional[str],
        ext_suffix: Optional[str],
        extension_suffixes: tuple[str, ...],
        platform: str,
        libc: Optional[str],
        libc_evidence: str,
        libc_version: Optional[str],
        elf: Optional[ElfInfo],
        site_dirs: tuple[str, ...],
        user_site: Optional[str],
        startup_hook: Optional[dict[str, Any]] = None,
        root: Optional[str] = None,
    ) -> None:
        put = object.__setattr__
        put(self, "implementation", implementation)
        put(self, "version", version)
        put(self, "executable", executable)
        put(self, "soabi", soabi)
        put(self, "ext_suffix", ext_suffix)
        put(self, "extension_suffixes", extension_suffixes)
        put(self, "platform", platform)
        put(self, "libc", libc)
        put(self, "libc_evidence", libc_evidence)
        put(self, "libc_version", libc_version)
        put(self, "elf", elf)
        put(self, "site_dirs", site_dirs)
        put(self, "user_site", user_site)
        put(self, "startup_hook", {} if startup_hook is None else startup_hook)
        put(self, "root", root)

    def replace(self, **changes: Any) -> InterpreterFacts:
        """A copy with some fields changed (what ``dataclasses.replace`` did)."""
        values = {name: getattr(self, name) for name in self._fields}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"InterpreterFacts has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return InterpreterFacts(**values)

    @property
    def accepted(self) -> tuple[ExtSuffix, ...]:
        """The tagged suffixes this interpreter loads, parsed."""
        out = []
        for s in self.extension_suffixes:
            try:
                out.append(parse_suffix(s))
            except SuffixError:
                continue  # ".so", ".abi3.so": untagged, nothing to alias
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "version": ".".join(map(str, self.version)),
            "executable": self.executable,
            "soabi": self.soabi,
            "ext_suffix": self.ext_suffix,
            "extension_suffixes": list(self.extension_suffixes),
            "platform": self.platform,
            "libc": self.libc,
            "libc_version": self.libc_version,
            "libc_evidence": self.libc_evidence,
            "machine": self.elf.describe() if self.elf else None,
            "site_dirs": list(self.site_dirs),
            "user_site": self.user_site,
            "startup_hook": dict(self.startup_hook),
            "root": self.root,
        }


def _not_python(executable: str, why: str) -> UsageError:
    return UsageError(f"{executable or repr(executable)} is not a Python interpreter ({why})")


def _run_probe(executable: str) -> dict[str, Any]:
    """Run the stdlib-only probe in ``executable``.

    Anything that does not answer with the probe's facts (``/bin/sh``,
    ``/bin/true``, a missing file, ``""``) is reported as "not a Python
    interpreter" (:class:`UsageError`, exit code 2).
    """
    if not executable.strip():
        raise _not_python(executable, "empty path")
    if not os.path.exists(executable):
        raise UsageError(f"{executable}: no such file (--python names an interpreter)")
    if os.path.isdir(executable):
        raise _not_python(executable, "a directory")
    import json
    import subprocess

    try:
        proc = subprocess.run(
            [executable, "-E", _probe.__file__],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise _not_python(executable, f"cannot run it: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise InterpreterError(f"{executable} did not answer within 60 s") from None
    try:
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("probe") != _probe.PROBE_ID:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}, no facts printed"])[-1]
        raise _not_python(executable, last[:200])
    return data


def _musl_version(loader: str) -> Optional[str]:
    """musl's loader prints ``Version 1.2.5`` on stderr when run bare."""
    import re
    import subprocess

    try:
        proc = subprocess.run([loader], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Version (\d+\.\d+\.\d+)", proc.stderr)
    return m.group(1) if m else None


def _detect_libc(
    elf: Optional[ElfInfo], confstr: Optional[str], want_version: bool
) -> tuple[Optional[str], str, Optional[str]]:
    family: Optional[str] = None
    evidence = "unknown"
    if elf is not None:
        family, evidence = libc_of(elf)
    if family is None and confstr is not None:
        # A static interpreter names no libc; ask the libc that runs it.
        family = "glibc" if confstr.startswith("glibc") else "musl"
        evidence = f"confstr(CS_GNU_LIBC_VERSION) = {confstr!r}"
    version: Optional[str] = None
    if family == "glibc" and confstr and confstr.startswith("glibc "):
        version = confstr.split(" ", 1)[1]
    elif family == "musl" and want_version and elf is not None and elf.interpreter:
        version = _musl_version(elf.interpreter)
    return family, evidence, version


def _hook_state(site_dirs: tuple[str, ...], probe: dict[str, Any]) -> dict[str, Any]:
    env = os.environ
    return {
        "pth_files": [os.path.join(d, PTH_NAME) for d in site_dirs if os.path.exists(os.path.join(d, PTH_NAME))],
        "loaded": bool(probe.get("startup_hook_loaded")),
        "fallback_installed": bool(probe.get("fallback_installed")),
        "disabled": bool(env.get(DISABLE_ENV)),
        "fallback_only": bool(env.get(FALLBACK_ONLY_ENV)),
        "site_disabled": bool(getattr(sys.flags, "no_site", 0)) if probe.get("local") else None,
    }


def gather_facts(
    python: Optional[str] = None, *, libc_version: bool = False, sites: Optional[Sequence[str]] = None
) -> InterpreterFacts:
    """Facts about the running interpreter, or about ``python`` (a path).

    Another interpreter is asked by running the stdlib-only probe in it.
    ``sites`` (the running interpreter only): the site directories the
    caller works on, which become :attr:`InterpreterFacts.site_dirs`; the
    probe then skips ``sysconfig`` (:func:`soabi_shim._probe.collect`).
    """
    if sites is not None and python is not None:
        raise UsageError("gather_facts: sites= is for the running interpreter only")
    if python is None:
        probe: dict[str, Any] = _probe.collect(light=sites is not None)
        probe["local"] = True
    else:
        probe = _run_probe(python)
    executable = probe.get("executable") or python or sys.executable
    try:
        elf: Optional[ElfInfo] = read_elf(os.path.realpath(executable))
    except ElfError:
        elf = None
    family, evidence, version = _detect_libc(elf, probe.get("libc_confstr"), libc_version)
    candidates: list[Optional[str]]
    if sites is not None:
        candidates = list(sites)
    else:
        candidates = [probe.get("purelib"), probe.get("platlib"), probe.get("user_site")]
    site_dirs: list[str] = []
    seen: set[str] = set()
    for d in candidates:
        if d and os.path.isdir(d) and os.path.realpath(d) not in seen:
            seen.add(os.path.realpath(d))
            site_dirs.append(d)
    dirs = tuple(site_dirs)
    return InterpreterFacts(
        implementation=str(probe["implementation"]),
        version=(int(probe["version"][0]), int(probe["version"][1]), int(probe["version"][2])),
        executable=str(executable),
        soabi=probe.get("soabi"),
        ext_suffix=probe.get("ext_suffix"),
        extension_suffixes=tuple(probe.get("extension_suffixes") or ()),
        platform=str(probe.get("platform")),
        libc=family,
        libc_evidence=evidence,
        libc_version=version,
        elf=elf,
        site_dirs=dirs,
        user_site=probe.get("user_site"),
        startup_hook=_hook_state(dirs, probe),
    )
