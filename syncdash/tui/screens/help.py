"""`?`: every key, by screen.

The keys are data, laid out when drawn: each section's keys are packed onto lines as wide as the box, and a line
breaks only between two keys, never inside one ("s sync the selected source" stays whole). Why: a text written
for one width is cut off or wrapped mid-phrase on another (80 columns), and the help is what the footer points
to for every key it had no room for.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

TITLE = "syncdash console"
SEPARATOR = " · "
LABEL_WIDTH = 13  # the widest section name and two spaces

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Everywhere", ("q quit", "? help", "h history", "e errors", "b browse", "1 dashboard", "ctrl+p commands",
                    "t light/dark theme (remembered)", "escape back one level; from history or errors: dashboard")),
    ("Dashboard", ("s sync the selected source", "f full sync", "d dry run (a applies)", "c cancel its run",
                   "p pause/resume", "R retry its failed items", "enter open source", "/ filter", "g/G top/bottom",
                   "tab next panel")),
    ("History", ("enter open run", "/ filter (words, source:X status:Y trigger:Z)", "n/p next/previous page",
                 "r retry failed items")),
    ("Run detail", ("r retry failed items", "c cancel", "o page screenshot", "escape back")),
    ("Errors", ("r retry selected", "R retry all retryable", "x mark resolved", "y copy details",
                "o open a web page's screenshot and HTML")),
    ("Browse", ("enter open a table, then a row's history", "n/p next/previous page",
                "s sort by the cursor's column (again: reverse)", "l tables",
                "/ filter: col:value (contains) col>value col=value, words")),
    ("Source", ("s sync", "f full", "d dry run (a push: the requests it would send)", "p pause/resume",
                "R retry errors", "x reset the state (asks first)", "C set the cursor", "enter open run")),
)

NOTES = (
    "Counts: +inserted ~updated =unchanged -deleted !failed (rows of a run or a phase).",
    "[b]hosted[/b]: no daemon on this database, so the console runs the schedules and workers (stopped on quit). "
    "[b]attached[/b]: a daemon is alive; actions are queued for it. The line above the keys says which.",
)


def pack(items: tuple[str, ...], width: int) -> list[str]:
    """The items joined by SEPARATOR onto lines of at most `width` cells, breaking only between items; an item
    longer than a whole line (a very narrow terminal) is wrapped at its own words."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line}{SEPARATOR}{item}" if line else item
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        *whole, line = textwrap.wrap(item, max(width, 8)) or [""]
        lines.extend(whole)
    if line:
        lines.append(line)
    return lines


class KeyTable:
    """A rich renderable: the sections laid out at the width it is given (Textual asks it for its height at the
    box's width too, so the box grows with the wrapped lines instead of cutting them)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)

    def lines(self, width: int) -> Iterator[Text]:
        yield Text(TITLE, style="bold")
        yield Text("")
        narrow = width < LABEL_WIDTH + 24  # too narrow for a label column: the keys go under their section name
        for name, items in SECTIONS:
            if narrow:
                yield Text(name, style="bold")
                for line in pack(items, width - 2):
                    yield Text("  " + line)
                continue
            for i, line in enumerate(pack(items, width - LABEL_WIDTH)):
                yield Text.assemble(((name if i == 0 else "").ljust(LABEL_WIDTH), "bold"), line)
        for note in NOTES:
            yield Text("")
            yield Text.from_markup(note)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close"),
                Binding("q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(KeyTable(), id="help-keys")
