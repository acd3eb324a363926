"""The plugin manager and error-isolated hook calls."""

from __future__ import annotations

import sys
from typing import Any, Optional

import pluggy

from . import hookspecs
from ._names import ENTRY_POINT_GROUP

__all__ = ["PluginHost", "get_plugin_host"]


class PluginHost:
    """A pluggy manager plus the failures of the plugins it ran."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.failures: list[tuple[str, str]] = []  # (plugin name, message)

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call each implementation of ``hook`` on its own.

        A plugin that raises is recorded in :attr:`failures` and skipped;
        the others still run.  ``None`` results are dropped.
        """
        results = []
        caller = getattr(self.manager.hook, hook)
        for impl in reversed(caller.get_hookimpls()):  # pluggy calls LIFO, tryfirst first
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:  # a plugin's bug must not break the run
                self.failures.append(
                    (impl.plugin_name, f"plugin {impl.plugin_name!r} raised {type(exc).__name__}: {exc}")
                )
                continue
            if result is not None:
                results.append(result)
        return results

    def check(self, candidate: Any, facts: Any) -> Optional[str]:
        """Fail closed: None if every check passed, else the refusal reason.

        The built-in rules run first, outside :meth:`call`: any exception
        from them (``MemoryError`` included) refuses the candidate.  A
        plugin that raises (anything but ``KeyboardInterrupt``) refuses it
        too; its veto is a refusal whatever the other plugins say.
        """
        from . import builtin
        from .hookspecs import Verdict

        try:
            verdict = builtin.soabi_shim_check_candidate(candidate=candidate, facts=facts)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return f"the built-in check failed: {type(exc).__name__}: {exc}"
        if verdict is not None and not verdict.ok:
            return verdict.reason
        reasons: list[str] = []
        caller = self.manager.hook.soabi_shim_check_candidate
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin is builtin:
                continue
            try:
                result = impl.function(*[{"candidate": candidate, "facts": facts}[n] for n in impl.argnames])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                reasons.append(f"plugin {impl.plugin_name!r} raised {type(exc).__name__}: {exc}")
                continue
            if isinstance(result, Verdict) and not result.ok:
                reasons.append(result.reason)
        return "; ".join(reasons) or None


def _load_entry_points(manager: pluggy.PluginManager, failures: list[tuple[str, str]]) -> None:
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points

        eps = list(entry_points(group=ENTRY_POINT_GROUP))
    else:  # pragma: no cover - 3.9
        from importlib.metadata import entry_points

        eps = list(entry_points().get(ENTRY_POINT_GROUP, ()))
    for ep in eps:
        if manager.get_plugin(ep.name) is not None or manager.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
        except Exception as exc:
            failures.append((ep.name, f"plugin {ep.name!r} failed to load: {type(exc).__name__}: {exc}"))


def get_plugin_host(plugins: Optional[list[object]] = None, *, entry_points: bool = True) -> PluginHost:
    """A host with the built-in plugin, ``plugins`` and installed plugins."""
    from . import builtin

    manager = pluggy.PluginManager("soabi_shim")
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name="builtin")
    for plugin in plugins or ():
        manager.register(plugin)
    host = PluginHost(manager)
    if entry_points:
        _load_entry_points(manager, host.failures)
    return host
