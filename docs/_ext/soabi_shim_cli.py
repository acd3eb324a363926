"""A tiny Sphinx extension: the CLI reference, generated from the real parser.

``soabi_shim.cli.build_parser()`` is asked at build time; nothing is copied by
hand, so the page cannot drift from the code.  In a MyST page::

    ```{soabi-shim-cli}
    ```

renders the top-level help, then one section per subcommand (its one-line
summary and its complete ``--help``).  With an argument, e.g.
```` ```{soabi-shim-cli} heal ```` only that subcommand's help is rendered,
without a section.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Help is wrapped by argparse to the terminal width; fix it for the docs.
WIDTH = "90"


@contextmanager
def _fixed_width() -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _help(parser: argparse.ArgumentParser) -> str:
    if hasattr(parser, "color"):  # Python 3.14+: never emit ANSI colours
        parser.color = False
    with _fixed_width():
        return parser.format_help().rstrip() + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line summary, parser) of every subcommand, in parser order."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, summaries.get(name, ""), sub))
    return out


class SoabiShimCliDirective(SphinxDirective):
    has_content = False
    required_arguments = 0
    optional_arguments = 1

    def _block(self, text: str) -> nodes.literal_block:
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block

    def run(self) -> list[nodes.Node]:
        from soabi_shim.cli import build_parser

        parser = build_parser()
        commands = _subcommands(parser)
        if self.arguments:
            wanted = self.arguments[0]
            for name, _summary, sub in commands:
                if name == wanted:
                    return [self._block(_help(sub))]
            raise self.error(f"soabi-shim has no subcommand {wanted!r} (has: {', '.join(c[0] for c in commands)})")
        result: list[nodes.Node] = [self._block(_help(parser))]
        for name, summary, sub in commands:
            title = f"soabi-shim {name}"
            label = f"cli-{name}"  # {ref}`cli-heal` etc. link here
            section = nodes.section(ids=[nodes.make_id(label)], names=[label])
            section += nodes.title(title, "", nodes.literal(title, title))
            if summary:
                section += nodes.paragraph(summary, summary[:1].upper() + summary[1:] + ".")
            section += self._block(_help(sub))
            self.state.document.note_explicit_target(section, section)
            result.append(section)
        return result


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("soabi-shim-cli", SoabiShimCliDirective)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
