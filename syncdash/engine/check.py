"""`syncdash check` and POST /v1/check: open each source the way a run would and say what works and what does
not, without running it (in the spirit of Airbyte's `check`).

A pull source reads the first batch of each stream through its own kind (the first REST page, the first web
page in Chromium, the CSV file's header and first rows), with a dry-run context limited to one page: nothing is
written to target tables and no run is recorded. The target database is connected to. Pushes and flows are
checked as far as that is possible without sending anything: their database, and their steps.
`validate_inputs` is the part `syncdash validate` runs: only local checks (files, headers, the browser).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from syncdash.config.kinds import adapter_for
from syncdash.config.models import Config, SourceConfig
from syncdash.errors import SourceUnavailable
from syncdash.kinds.contract import RunContext, Source


@dataclass
class CheckLine:
    ok: bool
    what: str
    detail: str
    fatal: bool = True  # False: a problem of this machine (no browser yet), which `validate` only warns about


@dataclass
class SourceCheck:
    source: str
    kind: str
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)

    def add(self, ok: bool, what: str, detail: str) -> None:
        self.lines.append(CheckLine(ok, what, detail))

    def json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "ok": self.ok,
                "checks": [{"ok": ln.ok, "what": ln.what, "detail": ln.detail} for ln in self.lines]}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _check_target(store: Any, config: Config, src: SourceConfig, out: SourceCheck) -> None:
    from syncdash.common.dialect import mask_url
    from syncdash.targets import open as target_db

    url = target_db.target_url(config, src)
    where = config.redact(mask_url(url or store.url))
    try:
        db = target_db.connect(store, url)
        try:
            db.execute("SELECT 1")
        finally:
            db.close()
    except Exception as e:  # what check is for: any failure to reach the database is reported, not raised
        out.add(False, "target database", f"{where}: {config.redact(_first_line(e))}")
        return
    out.add(True, "target database", f"{where}: connected")


def _stored_cursors(store: Any, name: str) -> dict[str, Any]:
    if store is None:
        return {}
    st = store.source_states().get(name)
    try:
        value = json.loads(st.cursor) if st is not None and st.cursor else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_first_batches(store: Any, config: Config, src: SourceConfig, out: SourceCheck) -> None:
    adapter: Source = adapter_for(src.kind)(src)
    try:
        adapter.bind(RunContext(store=store, dry_run=True, limit_pages=1, cursors=_stored_cursors(store, src.name),
                                redact=config.redact, add_secret=config.add_secret))
        for stream in adapter.streams():
            label = "read" if stream.phase == "load" else f"read {stream.phase}"
            try:
                batch = next(iter(stream.batches(None)), None)
            except Exception as e:  # a 401, a missing file, a header without a mapped column, no browser...
                out.add(False, label, config.redact(_first_line(e)))
                continue
            if batch is None:
                out.add(True, label, "opened; no records")
                continue
            where = f" ({config.redact(batch.detail)})" if batch.detail else ""
            bad = f"; {len(batch.problems)} record(s) with problems (see a dry run)" if batch.problems else ""
            out.add(True, label, f"{len(batch.records)} record(s) in the first batch{where}{bad}")
    except Exception as e:  # binding failed: a token endpoint down, a browser that does not start
        out.add(False, "open", config.redact(_first_line(e)))
    finally:
        try:
            adapter.close()
        except Exception:  # closing must not hide what the check found
            pass


def check_source(store: Any, config: Config, src: SourceConfig) -> SourceCheck:
    out = SourceCheck(src.name, src.kind)
    if src.kind == "flow":
        steps = src.step_names()
        out.add(True, "steps", ", ".join(steps) + " (each is checked as its own source)")
        return out
    _check_target(store, config, src, out)
    if src.kind == "push":
        out.add(True, "requests", "not sent by check: `syncdash run NAME --dry-run` lists them")
        return out
    _read_first_batches(store, config, src, out)
    return out


def check_sources(store: Any, config: Config, names: list[str] | None = None) -> list[SourceCheck]:
    chosen = [s for s in config.source_list if not names or s.name in names]
    return [check_source(store, config, s) for s in chosen]


def validate_inputs(config: Config, src: SourceConfig) -> list[CheckLine]:
    """What `validate` can check without writing or sending: a CSV source's files and their header (every
    mapped column present), a web source's browser. A file that does not exist yet is the warning describe()
    prints, not a failure: exports often appear after the config is written."""
    out = SourceCheck(src.name, src.kind)
    if src.kind == "csv":
        adapter: Source = adapter_for(src.kind)(src)
        try:
            adapter.bind(RunContext(dry_run=True, redact=config.redact))
            for stream in adapter.streams():
                try:
                    next(iter(stream.batches(None)), None)
                except SourceUnavailable:
                    continue  # no file yet (a nightly export may bring it): describe() already warned
                except Exception as e:  # an unreadable file, a header without a mapped column
                    out.add(False, "file", config.redact(_first_line(e)))
                else:
                    out.add(True, "file", "found; the header has every mapped column")
        finally:
            adapter.close()
    elif src.kind == "web":
        from syncdash.kinds.web.browser import BrowserNotFound, find_browser

        exe = getattr(getattr(src, "browser", None), "executable", None)
        try:
            found = find_browser(exe, source=src.name)
        except BrowserNotFound as e:
            out.lines.append(CheckLine(False, "browser", _first_line(e), fatal=False))
        else:
            out.add(True, "browser", f"{found.path} (found by {found.how})")
    return out.lines
