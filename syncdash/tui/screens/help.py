"""`?`: every key, by screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]syncdash console[/b]

[b]Everywhere[/b]   q quit · ? help · h history · e errors · b browse · 1 dashboard
             ctrl+p commands · t light/dark theme (remembered)
             escape back one level; from history or errors: dashboard
[b]Dashboard[/b]    s sync the selected source · f full sync · d dry run (a applies)
             c cancel its run · p pause/resume · R retry its failed items
             enter open source · / filter · g/G top/bottom · tab next panel
[b]History[/b]      enter open run · / filter (words, source:X status:Y trigger:Z)
             n/p next/previous page · r retry failed items
[b]Run detail[/b]   r retry failed items · c cancel · o page screenshot · escape back
[b]Errors[/b]       r retry selected · R retry all retryable · x mark resolved
             y copy details · o open a web page's screenshot and HTML
[b]Browse[/b]       enter open a table, then a row's history · n/p next/previous page
             s sort by the cursor's column (again: reverse) · l tables
             / filter: col:value (contains) col>value col=value, words
[b]Source[/b]       s sync · f full · d dry run · p pause/resume · R retry errors
             enter open run

Counts: +inserted ~updated =unchanged -deleted !failed (rows of a run or a phase).

[b]hosted[/b]: no daemon on this database, so the console runs the schedules and
workers (stopped on quit). [b]attached[/b]: a daemon is alive; actions are queued
for it. The line above the keys says which.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close"),
                Binding("q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP)
