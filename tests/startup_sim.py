"""Run the start-up hook as ``site`` would, on a glibc host, as if on musl.

:func:`sim_code` returns Python source for ``python -c``: it makes the hook's
one libc decision say musl (``soabi_shim._start.is_musl``, patched the moment
the line imports that module, and, for the ``.pth`` line itself, a ``sys``
whose ``thread_info.version`` is None), then executes the shipped ``.pth``
line with ``sitedir`` bound, like ``site.addpackage`` does, as many times as
asked (a venv reads its ``.pth`` files twice), then runs ``after``.  The
fallback keeps the real libc (glibc), so it serves this host's extensions.
"""

from __future__ import annotations

from typing import Optional

SIM = r"""
import sys, types, importlib.abc, importlib.machinery
_real_sys = sys
class _FakeSys(types.ModuleType):
    def __getattr__(self, name):
        return getattr(_real_sys, name)
_fake = _FakeSys("sys")
_fake.thread_info = types.SimpleNamespace(version=None, name="pthread", lock="mutex+cond")
class _PatchStart(importlib.abc.MetaPathFinder):
    # soabi-shim's modules see the real sys (only the line sees the fake one);
    # soabi_shim._start.is_musl says True.
    def find_spec(self, name, path=None, target=None):
        if not name.startswith("soabi_shim"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader.exec_module
        def exec_module(module):
            saved = _real_sys.modules["sys"]
            _real_sys.modules["sys"] = _real_sys
            try:
                real(module)
            finally:
                _real_sys.modules["sys"] = saved
            if name == "soabi_shim._start":
                module.is_musl = lambda: True
        spec.loader.exec_module = exec_module
        return spec
_real_sys.meta_path.insert(0, _PatchStart())
with open({pth!r}) as _f:
    _line = _f.read()
assert _line.count("\n") == 1
{argv}
def _run_line(sitedir):
    _real_sys.modules["sys"] = _fake
    try:
        exec(_line)
    finally:
        _real_sys.modules["sys"] = _real_sys
{before}
for _i in range({passes}):
    for _site in {sites!r}:
        _run_line(_site)
{after}
"""


def sim_code(
    pth: str,
    sites: list[str],
    *,
    passes: int = 2,
    after: str = "",
    before: str = "",
    argv: Optional[list[str]] = None,
) -> str:
    return SIM.format(
        pth=pth,
        sites=sites,
        passes=passes,
        after=after,
        before=before,
        argv=f"sys.argv[:] = {argv!r}" if argv is not None else "",
    )
