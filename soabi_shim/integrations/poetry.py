"""Poetry application plugin: heal the project environment after ``poetry install``
(also ``add``, ``update`` and ``sync``).

Install into Poetry's own environment::

    poetry self add "soabi-shim[poetry]"
"""

from __future__ import annotations

from typing import Any

from .pdm import heal_environment

try:  # Poetry is optional; the class is only usable inside Poetry.
    from cleo.events.console_events import TERMINATE
    from poetry.plugins.application_plugin import ApplicationPlugin
except ImportError:  # pragma: no cover - exercised when Poetry is absent
    ApplicationPlugin = object
    TERMINATE = "console.terminate"

COMMANDS = frozenset({"install", "add", "update", "sync"})


class SoabiShimPoetryPlugin(ApplicationPlugin):  # type: ignore[misc]
    """Registered under the ``poetry.application.plugin`` entry-point group."""

    def activate(self, application: Any) -> None:
        application.event_dispatcher.add_listener(TERMINATE, self.on_terminate)

    def on_terminate(self, event: Any, event_name: str, dispatcher: Any) -> None:
        command = event.command
        if getattr(command, "name", None) not in COMMANDS or event.exit_code != 0:
            return
        if getattr(getattr(event, "io", None), "input", None) is not None and _dry_run(event):
            return
        try:
            executable = str(command.env.python)
            report = heal_environment(executable)
        except Exception as exc:  # never turn a successful install into a failure
            event.io.write_error_line(f"soabi-shim: heal skipped: {exc}")
            return
        created = [a for a in report.aliases if a.action == "created"]
        if created:
            event.io.write_line(f"soabi-shim: {len(created)} extension alias(es) created")
        for problem in report.problems:
            event.io.write_error_line(f"soabi-shim: problem: {problem.path}: {problem.reason}")


def _dry_run(event: Any) -> bool:
    try:
        return bool(event.io.input.option("dry-run"))
    except Exception:
        return False
