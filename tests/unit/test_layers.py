"""The package's imports point down only (docs/contributing.md, "Layers").

Every module of ``soabi_shim`` sits on a floor; a module may import only
modules on floors *below* its own (an earlier entry of :data:`FLOORS`).
Within a floor the listed order is a floor order too: a module may import
the modules listed before it on the same line, never those after it.  All
imports count: module level, inside functions, and under ``TYPE_CHECKING``,
so a cycle cannot hide in a function body.  A new module must be given a
floor here, or this test fails.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "soabi_shim"

#: Bottom to top.  The comment says what the floor holds.
FLOORS: list[list[str]] = [
    ["_plain", "errors", "_names", "_twins", "suffixes"],  # leaves: no I/O, no package imports above
    ["elf", "sitefs", "record"],  # the only readers/writers of bytes on disk
    ["_probe", "facts", "image"],  # interpreter facts: live probe or an image (--root)
    ["report", "scan", "hookspecs", "builtin", "plugins", "plan", "apply"],  # pipeline parts
    ["pipeline"],  # run(): facts -> scan -> plan -> apply -> report
    # entry points, thin shells over the pipeline
    # (__init__ reaches the others only through its lazy __getattr__, which this test cannot see)
    [
        "fallback",
        "_startup",
        "_start",
        "install",
        "__init__",
        "cli",
        "__main__",
        "integrations.__init__",
        "integrations.pdm",
        "integrations.poetry",
    ],
]


def _rank() -> dict[str, tuple[int, int]]:
    return {name: (floor, pos) for floor, names in enumerate(FLOORS) for pos, name in enumerate(names)}


@functools.cache
def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        out[".".join(rel.parts)] = path
    return out


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """Package-relative names an ``ImportFrom`` reaches (empty if outside)."""
    if node.level:
        base = module.split(".")[:-1]
        if node.level > 1:
            base = base[: len(base) - (node.level - 1)]
        target = [*base, *(node.module.split(".") if node.module else [])]
    elif node.module and (node.module == "soabi_shim" or node.module.startswith("soabi_shim.")):
        target = node.module.split(".")[1:]
    else:
        return []
    names = []
    known = _modules()
    for alias in node.names:
        candidate = ".".join([*target, alias.name])
        if candidate in known:
            names.append(candidate)  # from . import hookspecs
        elif target:
            names.append(".".join(target))
        else:
            names.append("__init__")  # from soabi_shim import X: the package itself
    return names


def imports_of(module: str, path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "soabi_shim":
                    found.add("__init__")
                elif alias.name.startswith("soabi_shim."):
                    found.add(alias.name.split(".", 1)[1])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("soabi_shim."):
                found.add(arg.value.split(".", 1)[1])
    found.discard(module)
    return found


def test_every_module_has_a_floor() -> None:
    unplaced = sorted(set(_modules()) - set(_rank()))
    assert not unplaced, f"give these modules a floor in FLOORS: {unplaced}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_point_down(module: str) -> None:
    rank = _rank()
    if module not in rank:
        pytest.fail(f"{module} has no floor (see test_every_module_has_a_floor)")
    upward = sorted(
        f"{module} (floor {rank[module][0]}) imports {target} (floor {rank[target][0]})"
        for target in imports_of(module, _modules()[module])
        if target in rank and rank[target] >= rank[module]
    )
    assert not upward, "imports must point down only:\n" + "\n".join(upward)


def test_the_checker_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from .report import Report\n"
        "def f():\n    from . import hookspecs\n    import soabi_shim.pipeline\n"
        "    __import__('soabi_shim._startup')\n"
    )
    assert imports_of("elf", src) == {"report", "hookspecs", "pipeline", "_startup"}
