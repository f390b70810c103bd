"""Turning store rows into terminal output: tables for people, stable JSON for scripts.

Two rules for everything printed here:
- user data (values, messages, paths, names) goes through `esc` before it is put into a rich markup
  string, so `[bold]` or `[ragged]` in a CSV value is shown as written, not eaten as a style tag;
- every write passes `redact`, so a value that came from a ${VAR} in the config is never printed.

Only rich is imported at module level: `validate`, `schema` and `init` must not pay for SQLAlchemy.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncdash.common import humanize
from syncdash.common.humanize import unit_of

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from syncdash.engine import Progress as RunProgress
    from syncdash.store.models import Run

# keyed by RunStatus values; plain strings here because importing the store models would slow `validate`
STATUS_STYLE = {"succeeded": "green", "partial": "yellow", "failed": "red", "cancelled": "magenta",
                "interrupted": "red", "running": "cyan", "queued": "blue", "claimed": "cyan"}
HEALTH_STYLE = {"healthy": "green", "overdue": "yellow", "failing": "red", "paused": "magenta", "running": "cyan",
                "never run": "dim"}

_secrets: list[str] = []


def set_secrets(values: Iterable[str]) -> None:
    """Remember the config's ${VAR} values; longest first so one secret containing another masks whole."""
    _secrets[:] = sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)


def redact(text: str) -> str:
    """Mask the remembered ${VAR} values; main.py applies it to error messages, the consoles to all else."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def esc(value: Any) -> str:
    """User data made safe to embed in a rich markup string (shown verbatim)."""
    return escape(redact(str(value)))


class _RedactingStream:
    """The consoles' file: masks secrets in whatever any command prints. Resolves sys.stdout/stderr at
    each write so redirection (tests, pagers) keeps working."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def stream(self) -> TextIO:
        stream = getattr(sys, self.name)
        # while a rich Live/Progress runs, sys.stdout/stderr are proxies that print to this very console:
        # writing to the proxy would loop forever, so write to the file it wraps
        while hasattr(stream, "rich_proxied_file"):
            stream = stream.rich_proxied_file
        return stream

    def write(self, text: str) -> int:
        return self.stream.write(redact(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"


# piped output must not wrap at 80 columns: scripts and logs read these lines whole.
# emoji=False: a value such as ":warning:" is data, not an emoji code.
# _RedactingStream has every method rich calls on a file, without being an IO subclass
out = Console(file=cast(TextIO, _RedactingStream("stdout")), highlight=False, soft_wrap=True, emoji=False,
              width=None if sys.stdout.isatty() else 200)
err = Console(file=cast(TextIO, _RedactingStream("stderr")), highlight=False, soft_wrap=True, emoji=False,
              width=None if sys.stderr.isatty() else 200)


def _now() -> datetime:
    from syncdash.store.rows import utcnow

    return utcnow()


def age(ts: datetime | None, now: datetime | None = None) -> str:
    return humanize.age(ts, now or _now())


def until(iso_ts: str, now: datetime | None = None) -> str:
    """'in 5m' for an ISO timestamp (Z) in the future."""
    return humanize.until(datetime.fromisoformat(iso_ts.rstrip("Z")), now or _now())


def until_ts(ts: datetime, now: datetime | None = None) -> str:
    """'in 5m' for a naive UTC timestamp in the future."""
    return humanize.until(ts, now or _now())


def seconds(secs: float) -> str:
    """A duration people read: milliseconds under a second (not `0.0s`), seconds, then minutes."""
    if secs < 1:
        return f"{secs * 1000:.0f}ms"
    return f"{secs:.1f}s" if secs < 120 else f"{secs / 60:.1f}m"


def duration(run: Run) -> str:
    if run.started_at is None:
        return "-"
    end = run.finished_at or _now()
    return seconds((end - run.started_at).total_seconds())


COUNT_LEGEND = "+ inserted  ~ updated  = unchanged  - deleted  ! failed"


def count_words(c: dict[str, int] | Any) -> str:
    """Counts in words ("3 inserted, 1 updated, 0 unchanged, 0 deleted, 2 failed"), from a dict or a Run."""
    get = c.get if isinstance(c, dict) else (lambda k, d=0: getattr(c, k, d))
    return ", ".join(f"{get(k, 0)} {k}" for k in ("inserted", "updated", "unchanged", "deleted", "failed"))


def checkpoint_text(ck: Any) -> str:
    """A stored checkpoint (JSON) as readable fields: where a resumed run continues (stream, file and line,
    page, records fetched, batches committed), instead of the raw JSON. A URL's `user:password@` is dropped
    first, as the console's run detail does."""
    from syncdash.common.secrets import scrub_userinfo

    if isinstance(ck, str):
        ck = scrub_userinfo(ck)
        try:
            ck = json.loads(ck)
        except ValueError:
            return ck
    if not isinstance(ck, dict):
        return str(ck)
    parts: list[str] = []
    src = ck.get("source")
    inner: dict[str, Any] = src if isinstance(src, dict) else ck
    if "stream" in ck and isinstance(ck["stream"], int):
        parts.append(f"stream {ck['stream'] + 1}")
    files = inner.get("files")
    if isinstance(files, list) and isinstance(inner.get("file"), int):
        i = inner["file"]
        if i < len(files):
            entry = files[i]
            name = entry[0] if isinstance(entry, list) and entry else entry
            parts.append(f"file {name} line {inner.get('line', 0)}")
        else:
            parts.append(f"after the last of {len(files)} file(s)")
    if inner.get("page") is not None:
        page = inner["page"]
        parts.append(f"next page {page.get('n', page) if isinstance(page, dict) else page}")
    if "fetched" in inner:
        total = f" of {inner['total']}" if inner.get("total") else ""
        parts.append(f"{inner['fetched']}{total} record(s) fetched")
    if "index" in inner:
        parts.append(f"{inner['index']} item(s) done")
    if isinstance(ck.get("batches"), int):
        parts.append(f"{ck['batches']} batch(es) committed")
    return ", ".join(parts) if parts else json.dumps(ck, separators=(",", ":"))


def print_json(obj: Any) -> None:
    sys.stdout.write(redact(json.dumps(obj, indent=2, ensure_ascii=False, default=str)) + "\n")


def runs_table(runs: list[Run], title: str | None = None) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in ("run", "source", "trigger", "mode", "status", "started", "took", "ins", "upd", "same", "del",
                "fail"):
        t.add_column(col, justify="right" if col in ("run", "ins", "upd", "same", "del", "fail") else "left",
                     no_wrap=True)
    for r in runs:
        status = r.status + (" (dry)" if r.dry_run else "")
        t.add_row(str(r.id), esc(r.source), esc(r.trigger), esc(r.mode),
                  f"[{STATUS_STYLE.get(r.status, '')}]{esc(status)}[/]",
                  age(r.started_at), duration(r), str(r.inserted), str(r.updated), str(r.unchanged),
                  str(r.deleted), str(r.failed))
    return t


COUNT_KEYS = ("inserted", "updated", "unchanged", "deleted", "failed")


def compact_counts(c: dict[str, int]) -> str:
    return f"+{c['inserted']} ~{c['updated']} ={c['unchanged']} -{c['deleted']} !{c['failed']}"


class PhaseCounts:
    """Each phase's own share of its run's counts, from the run's running totals the engine reports.

    Why: a flow reports, for each step, the flow's counts so far plus the step's (and a source's finalize phase
    the run's counts so far), so a step's bar would show the total of the steps before it too. Every increase of
    the run's counts is credited to the phase that reported it, which is that phase's own work whatever the
    order the phases report in. A resumed run's first report carries what earlier attempts counted: credited to
    its first phase, the only place to put it.
    """

    def __init__(self) -> None:
        self.run_totals: dict[int, dict[str, int]] = {}
        self.phases: dict[tuple[int, str], dict[str, int]] = {}

    def add(self, run_id: int, phase: str, counts: dict[str, int]) -> dict[str, int]:
        before = self.run_totals.get(run_id, dict.fromkeys(COUNT_KEYS, 0))
        own = self.phases.setdefault((run_id, phase), dict.fromkeys(COUNT_KEYS, 0))
        for k in COUNT_KEYS:
            own[k] += max(0, counts.get(k, 0) - before.get(k, 0))
        self.run_totals[run_id] = {k: counts.get(k, 0) for k in COUNT_KEYS}
        return own


class ProgressView:
    """Live bars on a terminal; plain, throttled lines when piped (logs, CI).

    A phase with a known total has a bar and a percentage; one without (a web source's pages, whose number no
    site says in advance) an indeterminate bar and the count so far, never a percentage stuck at 0.0%. When the
    next run starts, or the command ends, the bars of the run before stop moving: the unknown totals become the
    counts reached. Each bar shows its phase's own counts (PhaseCounts)."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.progress: Progress | None = None
        self.tasks: dict[tuple[int, str], TaskID] = {}
        self._last_line = 0.0
        self._complete: set[tuple[int, str]] = set()
        self.counts = PhaseCounts()
        self._current_run: int | None = None

    def __enter__(self) -> ProgressView:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]{task.fields[source]}[/] {task.fields[phase]:8}"),
                                     BarColumn(), TextColumn("{task.fields[amount]:>6}"),
                                     TextColumn("{task.fields[counts]}"), TimeRemainingColumn(),
                                     console=err, transient=False)
            self.progress.start()
            err.print(f"[dim]counts: {COUNT_LEGEND}[/]")  # the bars use the compact symbols
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.finish_run(self._current_run)
            self.progress.stop()

    def finish_run(self, run_id: int | None) -> None:
        """The run's phases with no known total stop pulsing: a full bar at the count they reached."""
        if self.progress is None or run_id is None:
            return
        for (rid, _), task_id in self.tasks.items():
            task = self.progress.tasks[task_id]
            if rid == run_id and task.total is None:
                done = max(int(task.completed), 1)
                self.progress.update(task_id, total=done, completed=done)

    @staticmethod
    def amount(p: RunProgress, digits: int = 0) -> str:
        """The column after the bar: a percentage when the total is known, else how many so far."""
        if p.total == 0:  # a phase with nothing to do (no deletes): complete
            return f"{100:.{digits}f}%"
        if p.total:
            return f"{100 * min(p.done, p.total) / p.total:.{digits}f}%"
        return f"{p.done:,} {unit_of(p.done, p.unit)}"

    def update(self, p: RunProgress) -> None:
        own = self.counts.add(p.run_id, p.phase, p.counts)
        counts = compact_counts(own)
        if self.progress is not None:
            if p.run_id != self._current_run:
                self.finish_run(self._current_run)
                self._current_run = p.run_id
            key = (p.run_id, p.phase)
            # total 0 is a phase with nothing to do (no deletes): a full bar, not an empty one; total None is
            # unknown: an indeterminate (pulsing) bar
            total, done = (1, 1) if p.total == 0 else (p.total, p.done)
            amount = esc(self.amount(p, 1))
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task("", total=total, source=esc(p.source),
                                                         phase=esc(p.phase), counts=counts, amount=amount)
            self.progress.update(self.tasks[key], completed=done, total=total, counts=counts, amount=amount)
            return
        now = time.monotonic()
        # the reader's position runs ahead of the rows handed over, so "complete" can be reported for
        # many batches in a row: log it once, not once per batch
        complete = bool(p.total and p.done >= p.total) and (p.run_id, p.phase) not in self._complete
        if now - self._last_line >= 1.0 or complete:
            if complete:
                self._complete.add((p.run_id, p.phase))
            self._last_line = now
            err.print(esc(f"{p.source} run {p.run_id} {p.phase} {self.amount(p)}: {count_words(own)}"
                          + (f" ({p.detail})" if p.detail else "")))
