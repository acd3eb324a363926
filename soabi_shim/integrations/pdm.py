"""PDM plugin: heal the project environment after every ``pdm install``/``sync``/``add``.

Install into PDM's own environment::

    pdm self add "soabi-shim[pdm]"

PDM loads plugins from the ``pdm`` entry-point group; this one connects to
PDM's ``post_install`` signal.
"""

from __future__ import annotations

from typing import Any

from ..report import Report


def heal_environment(executable: str) -> Report:
    """Heal every site dir of ``executable`` (the project's interpreter)."""
    from ..pipeline import run

    return run("heal", python=executable)


def on_post_install(project: Any, *, dry_run: bool = False, **_: Any) -> None:
    """Handler of PDM's ``post_install`` signal."""
    if dry_run:
        return
    try:
        executable = str(project.environment.interpreter.executable)
        report = heal_environment(executable)
    except Exception as exc:  # a plugin must never break the install it follows
        project.core.ui.echo(f"soabi-shim: heal skipped: {exc}", err=True)
        return
    created = [a for a in report.aliases if a.action == "created"]
    if created:
        project.core.ui.echo(f"soabi-shim: {len(created)} extension alias(es) created")
    for problem in report.problems:
        project.core.ui.echo(f"soabi-shim: problem: {problem.path}: {problem.reason}", err=True)


def plugin(core: Any) -> None:
    """The PDM plugin entry point."""
    from pdm.signals import post_install

    post_install.connect(on_post_install, weak=False)
