"""The source screen's state actions, as small modals over it: a confirmation before the state is reset, and
an input for a new cursor.

Why modals: resetting makes the next run start from `initial` (a long re-read, maybe a re-send), so it must be
a deliberate second key press, not one stray `x`; a cursor typed wrong must be said wrong right where it was
typed, so the user can fix it without starting over. The store work runs in a thread worker, never on the
event loop; the modal only says what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static


class StateModal(ModalScreen[Any]):
    """The frame both modals share (one CSS rule centres and boxes them)."""


class ConfirmModal(StateModal):
    """A question and its consequence; only `y` answers True (a stray enter must not reset anything), `n` or
    escape False."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "No", show=False)]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="state-modal"):
            yield Static(self.text, id="state-modal-text")
            yield Static("[b]y[/b] yes   [b]n[/b] / [b]escape[/b] no", id="state-modal-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class CursorModal(StateModal):
    """A new cursor for one stream. `apply(value, stream)` stores it (a ValueError says why not: the modal
    shows that and stays open); the modal is dismissed with the new cursor map, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, source: str, current: dict[str, Any], apply: Callable[[str, str | None], dict[str, Any]],
                 note: str = "") -> None:
        super().__init__()
        self.source = source
        self.current = current
        self.apply = apply
        self.note = note

    def compose(self) -> ComposeResult:
        streams = sorted(self.current)
        only = self.current[streams[0]] if len(streams) == 1 else None
        with Vertical(id="state-modal"):
            yield Static(f"Set the cursor of [b]{escape(self.source)}[/b]: the next incremental run starts after "
                         "it.\nNow: " + escape(", ".join(f"{k}: {v}" for k, v in self.current.items()) or "none")
                         + (f"\n{escape(self.note)}" if self.note else ""), id="state-modal-text")
            if len(streams) > 1:  # several streams keep a cursor each: say which one
                yield Select([(s, s) for s in streams], value=streams[0], allow_blank=False, id="cursor-stream")
            yield Input(value="" if only is None else str(only), placeholder="the new cursor value",
                        id="cursor-value")
            yield Static("", id="state-modal-error")
            yield Static("[b]enter[/b] set   [b]escape[/b] cancel", id="state-modal-keys")

    def on_mount(self) -> None:
        self.query_one("#cursor-value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self._error("Type a value: the next incremental run starts after it (to start from `initial`, reset "
                        "the state with x instead).")
            return
        stream: str | None = None
        if self.query("#cursor-stream"):
            chosen = self.query_one("#cursor-stream", Select).value
            stream = chosen if isinstance(chosen, str) else None
        self._error("")
        self.store(value, stream)

    @work(thread=True, exclusive=True, group="set-cursor", exit_on_error=False)
    def store(self, value: str, stream: str | None) -> None:
        try:
            cursors = self.apply(value, stream)
        except ValueError as e:
            self.app.call_from_thread(self._error, f"Not set: {e}")
            return
        except Exception as e:  # a locked store: say so, keep the modal so the value is not lost
            self.app.call_from_thread(self._error, f"Could not store the cursor: {e}")
            return
        self.app.call_from_thread(self.dismiss, cursors)

    def _error(self, text: str) -> None:
        self.query_one("#state-modal-error", Static).update(escape(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
