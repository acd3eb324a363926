"""The plugin manager, fail-closed checks and error-isolated hook calls.

Plugins come from three places: the built-in rules (:mod:`soabi_shim.builtin`,
always first and outside the plugin isolation), objects passed in by the
caller, and installed distributions' ``soabi_shim`` entry points.  With
``sites=[...]`` (the start-up hook, the pip-exit heal) entry points are read
only from the ``*.dist-info/entry_points.txt`` files in those site
directories and their modules are imported from there; ``importlib.metadata``
is not imported at all, and nothing on ``PYTHONPATH`` or in the current
directory is considered.  Without ``sites`` (the CLI, the Python API) they
come from ``importlib.metadata`` as usual, once a cheap look at the
``entry_points.txt`` files on ``sys.path`` says one may be there.  pluggy
itself is imported only when a plugin is registered: with none, the
built-in rules run directly, with the same isolation and results.

Failing closed: any exception but ``KeyboardInterrupt`` from a check refuses
the candidate; a plugin that failed to load, or implements a hook that does
not exist (a misspelt name), is a problem of the run *and* refuses every
candidate, since it may have been the plugin meant to veto it.
"""

from __future__ import annotations

import os
import stat
import sys

from ._names import ENTRY_POINT_GROUP

# Neither pluggy nor typing at run time: a healing start with no plugin
# installed runs the built-in rules directly (see :class:`PluginHost`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import ModuleType
    from typing import Any, Optional

    import pluggy

    from .hookspecs import Verdict

__all__ = ["PluginHost", "get_plugin_host", "read_entry_points"]

#: entry_points.txt files larger than this are not read (real ones are < 1 KiB).
MAX_ENTRY_POINTS_FILE = 64 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | _NOFOLLOW
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0) | _NOFOLLOW


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_BUILTIN: list[ModuleType] = []


def _builtin() -> ModuleType:
    """:mod:`soabi_shim.builtin`, imported on first use (it imports the ELF
    reader) and kept: an import statement in :meth:`PluginHost.check` cost
    a few microseconds per candidate."""
    if not _BUILTIN:
        from . import builtin

        _BUILTIN.append(builtin)
    return _BUILTIN[0]


def _new_manager() -> pluggy.PluginManager:
    """A pluggy manager with the hook specifications and the built-in plugin."""
    import pluggy

    from . import builtin, hookspecs

    hookimpl = hookspecs.hookimpl  # marks the specifications too
    for hook, tryfirst in builtin.IMPL_OPTS.items():
        hookimpl(tryfirst=tryfirst)(getattr(builtin, hook))
    manager = pluggy.PluginManager("soabi_shim")
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name="builtin")
    return manager


class PluginHost:
    """A pluggy manager plus the failures of the plugins it ran.

    The manager (and pluggy) is made on first use of :attr:`manager`: while
    no plugin but the built-in one was registered, :meth:`call` and
    :meth:`check` run the built-in rules directly, with the same isolation
    and results.
    """

    def __init__(self, manager: Optional[pluggy.PluginManager] = None) -> None:
        self._manager = manager
        self.failures: list[tuple[str, str]] = []  # (plugin name, message)
        #: Plugins that could not be loaded or validated: every check refuses.
        self.broken: list[str] = []

    @property
    def manager(self) -> pluggy.PluginManager:
        if self._manager is None:
            self._manager = _new_manager()
        return self._manager

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call each implementation of ``hook`` on its own.

        A plugin that raises (anything but ``KeyboardInterrupt``, so
        ``SystemExit`` too) is recorded in :attr:`failures` and skipped; the
        others still run.  ``None`` results are dropped.
        """
        if self._manager is None:
            return self._call_builtin(hook, kwargs)
        results = []
        caller = getattr(self.manager.hook, hook)
        for impl in reversed(caller.get_hookimpls()):  # pluggy calls LIFO, tryfirst first
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a plugin's bug must not break the run
                self.failures.append((impl.plugin_name, f"plugin {impl.plugin_name!r} raised {_describe(exc)}"))
                continue
            if result is not None:
                results.append(result)
        return results

    def _call_builtin(self, hook: str, kwargs: dict[str, Any]) -> list[Any]:
        """:meth:`call` with only the built-in plugin (no pluggy manager)."""
        from . import builtin, hookspecs

        if not hook.startswith("soabi_shim_") or not hasattr(hookspecs, hook):
            raise AttributeError(f"no hook named {hook!r}")  # what pluggy's manager.hook says
        if hook not in builtin.IMPL_OPTS:
            return []
        function = getattr(builtin, hook)
        code = function.__code__
        try:
            result = function(*[kwargs[name] for name in code.co_varnames[: code.co_argcount]])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self.failures.append(("builtin", f"plugin 'builtin' raised {_describe(exc)}"))
            return []
        return [] if result is None else [result]

    def check(self, candidate: Any, facts: Any) -> Optional[str]:
        """Fail closed: None if every check passed, else the refusal reason.

        The built-in rules run first, outside :meth:`call`: any exception
        from them (``MemoryError`` included) refuses the candidate.  A
        plugin that raises (anything but ``KeyboardInterrupt``) refuses it
        too; its veto is a refusal whatever the other plugins say.  While a
        plugin is broken (it failed to load or names an unknown hook),
        every candidate is refused.
        """
        builtin = _builtin()
        try:
            verdict: Optional[Verdict] = builtin.soabi_shim_check_candidate(candidate=candidate, facts=facts)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return f"the built-in check failed: {_describe(exc)}"
        if verdict is not None and not verdict.ok:
            return verdict.reason
        if self._manager is None and not self.broken:
            return None  # the built-in plugin only
        from .hookspecs import Verdict

        reasons: list[str] = []
        if self.broken:
            reasons.append(
                "plugin " + ", ".join(repr(n) for n in self.broken) + " is broken; nothing is aliased until it is fixed"
            )
        caller = self.manager.hook.soabi_shim_check_candidate
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin is builtin:
                continue
            try:
                result = impl.function(*[{"candidate": candidate, "facts": facts}[n] for n in impl.argnames])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                reasons.append(f"plugin {impl.plugin_name!r} raised {_describe(exc)}")
                continue
            if result is not None and not isinstance(result, Verdict):
                reasons.append(f"plugin {impl.plugin_name!r} returned {type(result).__name__}, not a Verdict")
            elif result is not None and not result.ok:
                reasons.append(result.reason)
        return "; ".join(reasons) or None

    def _fail(self, name: str, message: str) -> None:
        self.failures.append((name, message))
        if name not in self.broken:
            self.broken.append(name)

    def _register(self, plugin: object, name: Optional[str]) -> None:
        if name is None:  # a readable name for problems: the module's or the class's
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            if self.manager.has_plugin(name):
                name = f"{name}-{id(plugin)}"
        try:
            self.manager.register(plugin, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(name, f"plugin {name!r} failed to register: {_describe(exc)}")

    def _check_pending(self) -> None:
        """pluggy's ``check_pending``; an unknown (misspelt) hook is a problem."""
        if self._manager is None:
            return  # the built-in plugin only: nothing pending
        try:
            self.manager.check_pending()
        except KeyboardInterrupt:
            raise
        except BaseException:
            pass
        else:
            return
        for hook_name in list(vars(self.manager.hook)):
            if hook_name.startswith("_"):
                continue
            caller = getattr(self.manager.hook, hook_name)
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    self._fail(
                        impl.plugin_name,
                        f"plugin {impl.plugin_name!r} implements unknown hook {hook_name!r} (misspelt?)",
                    )


# --- entry points -----------------------------------------------------------


def _may_declare_entry_points(path: Iterable[str]) -> bool:
    """Could ``importlib.metadata`` find a ``soabi_shim`` entry point on ``path``?

    A cheap, conservative pre-check that spares the CLI and the API importing
    ``importlib.metadata`` (about 20-30 ms with ``email``, ``zipfile`` and
    ``pathlib``) when no plugin is installed.  False only when every entry is
    a directory (or absent) and no ``*.dist-info``/``*.egg-info`` in them has
    an ``entry_points.txt`` that mentions the group; a zip file or ``.egg`` on
    the path, an unreadable ``entry_points.txt``, or a meta path finder of
    its own that finds distributions all answer True, leaving the decision
    to ``importlib.metadata``.  (soabi-shim's own ``console_scripts`` entry
    names the package, not the group: only a section header counts.)
    """
    import importlib.machinery

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            return True
    needle = ENTRY_POINT_GROUP.encode()
    for entry in path:
        try:
            names = os.listdir(entry or ".")
        except NotADirectoryError:
            return True  # a zip file
        except OSError:
            continue
        for name in names:
            if name.endswith(".egg"):
                return True
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                fd = os.open(os.path.join(entry or ".", name, "entry_points.txt"), _OPEN_FLAGS & ~_NOFOLLOW)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                return True
            try:
                data = os.read(fd, MAX_ENTRY_POINTS_FILE + 1)
            except OSError:
                return True
            finally:
                os.close(fd)
            if len(data) > MAX_ENTRY_POINTS_FILE or (needle in data and _names_group(data)):
                return True
    return False


def _names_group(data: bytes) -> bool:
    """Has this ``entry_points.txt`` a ``[soabi_shim]`` section header?

    Laxer than ``importlib.metadata`` (which strips the line, then ``[]``),
    never stricter: spaces inside the brackets are allowed too.
    """
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("[") and line.strip("[]").strip() == ENTRY_POINT_GROUP:
            return True
    return False


def _metadata_entry_points() -> list[tuple[str, str]]:
    """(name, value) of the group from importlib.metadata (the CLI, the API)."""
    if not _may_declare_entry_points(sys.path):
        return []
    from importlib.metadata import entry_points

    if sys.version_info >= (3, 10):
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
    else:  # pragma: no cover - 3.9
        eps = list(entry_points().get(ENTRY_POINT_GROUP, ()))
    return [(ep.name, ep.value) for ep in eps]


def _read_small(name: str, dir_fd: int) -> Optional[str]:
    """A regular file below ``dir_fd``, at most MAX_ENTRY_POINTS_FILE bytes."""
    fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_POINTS_FILE:
            return None
        data = os.read(fd, MAX_ENTRY_POINTS_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_ENTRY_POINTS_FILE:
        return None
    return data.decode("utf-8", "replace")


def parse_entry_points(text: str, group: str = ENTRY_POINT_GROUP) -> list[tuple[str, str]]:
    """(name, value) pairs of ``group`` in an ``entry_points.txt`` text.

    The format is an INI file (``[group]`` then ``name = module:attr``);
    comments start with ``#`` or ``;``.  Extras (``[...]`` after the value)
    are dropped.
    """
    found: list[tuple[str, str]] = []
    section: Optional[str] = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section != group:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.partition("[")[0].strip()
        if name.strip() and value:
            found.append((name.strip(), value))
    return found


def read_entry_points(sites: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """(site, name, value) of every ``soabi_shim`` entry point installed in
    ``sites``: their ``*.dist-info/entry_points.txt`` files only.

    A dist-info directory that is a symlink, an ``entry_points.txt`` that is
    not a regular file or is larger than :data:`MAX_ENTRY_POINTS_FILE` is
    skipped.  Nothing else is read.
    """
    for site in sites:
        try:
            site_fd = os.open(site, _DIR_FLAGS & ~_NOFOLLOW)
        except OSError:
            continue
        try:
            try:
                names = sorted(n for n in os.listdir(site_fd) if n.endswith(".dist-info"))
            except OSError:
                continue
            for name in names:
                try:
                    dist_fd = os.open(name, _DIR_FLAGS, dir_fd=site_fd)
                except OSError:
                    continue
                try:
                    text = _read_small("entry_points.txt", dist_fd)
                except OSError:
                    text = None
                finally:
                    os.close(dist_fd)
                for ep_name, value in parse_entry_points(text or ""):
                    yield site, ep_name, value
        finally:
            os.close(site_fd)


def _import_from_site(module: str, site: str) -> Any:
    """Import ``module`` with its top-level package found in ``site`` only."""
    import importlib
    import importlib.machinery
    import importlib.util

    top = module.partition(".")[0]
    root = os.path.realpath(site)
    loaded = sys.modules.get(top)
    if loaded is None:
        spec = importlib.machinery.PathFinder.find_spec(top, [site])
        namespace = spec is not None and spec.loader is None and bool(spec.submodule_search_locations)
        if spec is None or (spec.loader is None and not namespace):
            raise ImportError(f"no module named {top!r} in {site}")
        loader = spec.loader
        loaded = importlib.util.module_from_spec(spec)
        if namespace:  # a fixed __path__: a namespace path would follow sys.path (the cwd too)
            loaded.__path__ = list(spec.submodule_search_locations or ())
        sys.modules[top] = loaded
        try:
            if loader is not None:
                loader.exec_module(loaded)
        except BaseException:
            sys.modules.pop(top, None)
            raise
    file = getattr(loaded, "__file__", None)
    places = [file] if file else list(getattr(loaded, "__path__", ()))  # a namespace package: its __path__
    if not places or not all(os.path.realpath(p).startswith(root + os.sep) for p in places):
        raise ImportError(f"{top!r} is already imported from outside {site}")
    return importlib.import_module(module)


def _resolve(value: str, site: Optional[str]) -> object:
    module, _, attr = value.partition(":")
    module = module.strip()
    if site is None:
        import importlib

        obj: object = importlib.import_module(module)
    else:
        obj = _import_from_site(module, site)
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def _load_entry_points(host: PluginHost, sites: Optional[list[str]]) -> None:
    if sites is None:
        found: list[tuple[Optional[str], str, str]] = [(None, n, v) for n, v in _metadata_entry_points()]
    else:
        found = list(read_entry_points(sites))
    for site, name, value in found:
        manager = host.manager
        if manager.get_plugin(name) is not None or manager.is_blocked(name):
            continue
        try:
            plugin = _resolve(value, site)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            host._fail(name, f"plugin {name!r} failed to load: {_describe(exc)}")
            continue
        host._register(plugin, name)


def get_plugin_host(
    plugins: Optional[list[object]] = None,
    *,
    entry_points: bool = True,
    sites: Optional[list[str]] = None,
) -> PluginHost:
    """A host with the built-in plugin, ``plugins`` and installed plugins.

    ``sites=[dir, ...]``: installed plugins come only from the distributions
    in those site directories (see :func:`read_entry_points`); otherwise
    from ``importlib.metadata``, which is imported only when a distribution
    on ``sys.path`` may declare one (:func:`_may_declare_entry_points`).
    ``entry_points=False``: none at all.  pluggy is imported only if a plugin
    is registered.
    """
    # pluggy is imported only once a plugin comes (a missing pluggy is then
    # named by the CLI): a run with none runs the built-in rules directly.
    host = PluginHost()
    for plugin in plugins or ():
        host._register(plugin, None)
    if entry_points:
        _load_entry_points(host, sites)
    host._check_pending()
    return host
