""""Did you mean `status`?": the closest known name to a mistyped one (commands, source names, config keys)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The known name most like `word`, if one is close enough to be a likely typo."""
    found = difflib.get_close_matches(word, [c for c in choices if c], n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean `status`?' or '' (to append to an error message)."""
    match = closest(word, choices)
    return f"; did you mean `{match}`?" if match else ""
