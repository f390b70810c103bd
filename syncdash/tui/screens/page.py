"""The base of every full screen: a breadcrumb in the header and a refresh each time the screen is shown.

Why: a screen shown again (escape back to it, or `h`/`e` switching to it) must never show what it read
minutes ago, and the header must say where in the stack the user is (dashboard, history, run 42).
"""

from __future__ import annotations

from textual.screen import Screen

SEPARATOR = " \u203a "  # a single right-pointing angle quote


class Page(Screen[None]):
    """A full screen of the console; `crumb` names it in the breadcrumb ("" leaves it out)."""

    crumb = ""
    top_level = False  # dashboard, history, errors: `h`/`e` switch between these instead of stacking them

    def on_screen_resume(self) -> None:
        crumbs = [s.crumb for s in self.app.screen_stack if isinstance(s, Page) and s.crumb]
        self.sub_title = SEPARATOR.join(crumbs)
        if self.is_mounted:
            self.reshow()

    def reshow(self) -> None:
        """Read the store again: called every time the screen becomes the current one (its first time too)."""
