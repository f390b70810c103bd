"""One function per subcommand; each returns the process exit code.

SQLAlchemy, the store and the engine are imported inside the commands that use them: `validate`,
`schema` and `init` then start in a third of the time (they only need the config models), and `status`,
`runs`, `errors` and `show` read an SQLite store through the DB-API (`open_reader`), without SQLAlchemy.
User data embedded in rich markup goes through `render.esc` (see render.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncdash.cli import render
from syncdash.cli.process import (
    EXIT_BUSY,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    install_cancel_handlers,
    startup_done,
)
from syncdash.cli.render import esc
from syncdash.config import load_config
from syncdash.config.load import find_config_file
from syncdash.config.models import Config, check_identifier
from syncdash.errors import AlreadyRunning, ConfigError, HttpApiError, UsageError
from syncdash.store.rows import RunStatus

if TYPE_CHECKING:
    from syncdash.config.models import HttpApiConfig
    from syncdash.engine import RunOptions, RunResult
    from syncdash.store.db import Store
    from syncdash.store.models import ItemError
    from syncdash.store.reader import StoreReader

STATUS_EXIT = {RunStatus.SUCCEEDED: EXIT_OK, RunStatus.PARTIAL: EXIT_PARTIAL, RunStatus.FAILED: EXIT_FAILED,
               RunStatus.CANCELLED: EXIT_CANCELLED}


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    render.set_secrets(cfg.secrets)
    return cfg


def open_store(url: str | None) -> Store:
    from syncdash.store.db import Store

    return Store(url)


def open_reader(url: str | None) -> Store | StoreReader:
    """The store for a read-only command: an SQLite store at HEAD is read through the DB-API, without
    SQLAlchemy (syncdash.store.reader); any other is the full Store."""
    from syncdash.store.reader import open_reader as open_for_reading

    return open_for_reading(url)


def _config_for_reading(args: argparse.Namespace) -> tuple[str | None, Config | None]:
    """Read-only commands work without a config (on the default database) so history stays reachable."""
    try:
        cfg = _config(args)
    except ConfigError:
        if args.config:
            raise
        try:
            find_config_file(None)
        except ConfigError:
            return None, None
        raise
    return cfg.database, cfg


def _store_for_reading(args: argparse.Namespace) -> tuple[Store | StoreReader, Config | None]:
    url, cfg = _config_for_reading(args)
    return open_reader(url), cfg


# ---- init / validate / schema --------------------------------------------------------------------

STARTER = """\
# syncdash config: `syncdash validate` checks it, `syncdash schema` gives editors completion.
database: sqlite:///syncdash.db       # this project's store (runs, errors, state) and tables, beside this file;
                                      # or postgresql://user@host/db. Without it: a store of this file's own
                                      # under the user data dir (`syncdash status` shows where)
sources:
  - name: customers
    kind: csv
    path: data/customers.csv          # relative to this file; a glob (data/*.csv) reads several
    table: customers
    primary_key: [id]
    mode: full                        # full | incremental
    deletes: soft                     # full only: soft | hard | keep
    csv: {delimiter: ",", encoding: utf-8, header: true}
    fields:
      id: {from: customer_id, type: int}
      name: {from: full_name, required: true}
      email: email
      signed_up: {from: signup_date, type: date, format: "%d/%m/%Y"}
      balance: {from: balance, type: float, default: 0}
"""

STARTER_DATA = """\
customer_id,full_name,email,signup_date,balance
1,Ada Lovelace,ada@example.com,10/12/2023,120.50
2,Grace Hopper,grace@example.com,09/12/2023,
3,Alan Turing,alan@example.com,23/06/2024,42
"""


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER, encoding="utf-8")
    data = path.parent / "data" / "customers.csv"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text(STARTER_DATA, encoding="utf-8")
    render.out.print(f"wrote {esc(path)} and {esc(data)}\nnext: syncdash --config {esc(path)} validate, "
                     "then run --all")
    return EXIT_OK


def _default_database_url() -> str:
    """Same as core.store.default_database_url, without importing SQLAlchemy for `validate`."""
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir('syncdash')) / 'syncdash.db'}"


def cmd_validate(args: argparse.Namespace) -> int:
    from syncdash.common.dialect import mask_url
    from syncdash.config.kinds import adapter_for

    cfg = _config(args)
    problems = 0
    render.out.print(f"[green]ok[/] {esc(cfg.file)}: {len(cfg.source_list)} source(s); "
                     f"store {esc(store_line(cfg))}"
                     + (f"; target tables in {esc(cfg.redact(mask_url(cfg.target)))}" if cfg.target else ""))
    for s in cfg.source_list:
        deletes = f", deletes {s.deletes}" if s.mode == "full" else ""
        if s.kind in ("flow", "push"):  # their describe() line says what they do
            render.out.print(f"- [bold]{esc(s.name)}[/] ({esc(s.kind)})")
        elif s.fields is None:  # a multi-stream source: each stream line says its table and key
            render.out.print(f"- [bold]{esc(s.name)}[/] ({esc(s.kind)}), {s.mode}{deletes}")
        else:
            render.out.print(f"- [bold]{esc(s.name)}[/] ({esc(s.kind)}) -> table {esc(s.table)}, "
                             f"key ({esc(', '.join(s.primary_key))}), {s.mode}{deletes}, {len(s.fields)} field(s), "
                             f"batches of {s.batch_size}")
        if s.target and s.target != cfg.target:
            render.out.print(f"    target: {esc(cfg.redact(mask_url(s.target)))}")
        if s.schedule:
            from syncdash.common.schedule import parse_schedule

            sched = parse_schedule(s.schedule, s.timezone)
            state = "" if s.enabled else " (disabled)"
            render.out.print(f"    schedule: {esc(sched.describe())}{state}, catch_up {str(s.catch_up).lower()}, "
                             f"retries {s.run_retry.attempts - 1}")
        for line in adapter_for(s.kind)(s).describe():
            render.out.print(f"    {esc(cfg.redact(line))}")
        if s.kind in ("csv", "web"):
            from syncdash.engine.check import validate_inputs

            for chk in validate_inputs(cfg, s):
                problems += not chk.ok and chk.fatal
                mark = "[green]ok[/]" if chk.ok else "[red]FAIL[/]" if chk.fatal else "[yellow]warning[/]"
                render.out.print(f"    {mark} {esc(chk.what)}: {esc(chk.detail)}")
    if problems:
        render.err.print(f"[red]{problems} problem(s)[/]: the config is valid, but a run would fail as shown")
        return EXIT_FAILED
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _config(args)
    for n in args.names:
        _source_arg(cfg, n)
    from syncdash.engine.check import check_sources

    store = open_store(cfg.database)
    results = check_sources(store, cfg, list(args.names) or None)
    if args.json:
        render.print_json([r.json() for r in results])
    else:
        for r in results:
            verdict = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
            render.out.print(f"{verdict} [bold]{esc(r.source)}[/] ({esc(r.kind)})")
            for ln in r.lines:
                mark = "[green]ok[/]  " if ln.ok else "[red]FAIL[/]"
                render.out.print(f"    {mark} {esc(ln.what)}: {esc(ln.detail)}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_schema(args: argparse.Namespace) -> int:
    from syncdash.config.schema import json_schema

    render.print_json(json_schema())
    return EXIT_OK


# ---- run / retry -------------------------------------------------------------------------------------

def _exit_for(results: list[RunResult], busy: bool) -> int:
    statuses = {r.status for r in results}
    if RunStatus.CANCELLED in statuses:
        return EXIT_CANCELLED
    if RunStatus.FAILED in statuses:
        return EXIT_FAILED
    if busy:
        return EXIT_BUSY
    if RunStatus.PARTIAL in statuses:
        return EXIT_PARTIAL
    return EXIT_OK


def _print_push_requests(r: RunResult) -> None:
    """A push's dry run: the requests that would be sent, per tenant (the first 20 of each, and the total)."""
    tenants: dict[str, list[dict[str, Any]]] = {}
    for s in r.sample:
        req = s.get("request")
        if isinstance(req, dict):
            tenants.setdefault(str(req.get("tenant") or ""), []).append(s)
    for tenant, items in tenants.items():
        total = items[0]["request"].get("total", len(items))
        who = f" for tenant {tenant}" if tenant else ""
        render.out.print(f"  requests that would be sent{esc(who)}: {total} (first {len(items)} shown)")
        for s in items:
            req = s["request"]
            render.out.print(esc(f"    {req['method']} {req['url']}  ({req.get('records', 1)} record(s), "
                                 f"{s['change']} key={s['key']})"))
            for k, v in (req.get("headers") or {}).items():
                render.out.print(esc(f"      {k}: {v}"))
            if s.get("after") is not None:
                render.out.print(esc("      " + json.dumps(s["after"], ensure_ascii=False, default=str)[:2000]))


def _print_result(r: RunResult, dry: bool, kind: str = "") -> None:
    c = r.counts
    style = render.STATUS_STYLE.get(r.status, "")
    resumed = " (resumed)" if r.resumed else ""
    if kind == "push":  # a push sends: its counts are requests' records, not rows inserted here
        verb = ("would send", "would update", "would delete") if dry else ("sent", "updated", "deleted")
        what = (f"{verb[0]} {c['inserted']} new, {verb[1]} {c['updated']}, {verb[2]} {c['deleted']}, "
                f"{c['unchanged']} unchanged, {c['failed']} failed, {c['skipped']} skipped")
    else:
        what = (f"{c['inserted']} inserted, {c['updated']} updated, {c['unchanged']} unchanged, "
                f"{c['deleted']} deleted, {c['failed']} failed, {c['skipped']} skipped")
    render.out.print(
        f"{esc(r.source)}: run {r.run_id} [{style}]{r.status}[/]{resumed}{' (dry run)' if dry else ''}: {what}")
    if kind == "push" and dry:
        _print_push_requests(r)
    for w in r.warnings:
        render.out.print(f"  [yellow]warning:[/] {esc(w)}")
    if r.error:
        render.out.print(f"  [red]error:[/] {esc(r.error)}")
    if r.counts["failed"]:
        render.out.print(f"  see: syncdash errors {r.run_id}")
    if kind == "push":
        return
    rows = [s["after"] for s in r.sample if s["change"] == "insert" and isinstance(s.get("after"), dict)]
    if dry and rows:  # the extracted rows as they would land: what tuning selectors and mappings needs
        from rich.table import Table

        cols = [k for k in rows[0] if not k.startswith("_")]
        table = Table(title=f"rows that would be inserted (first {len(rows)})", title_justify="left")
        for col in cols:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*("" if row.get(col) is None else esc(str(row[col])) for col in cols))
        render.out.print(table)
    if dry and r.sample and any(s["change"] != "insert" for s in r.sample):
        render.out.print("  sample of changes:")
        for s in r.sample:
            render.out.print("    " + esc(f"{s['change']:6} key={s['key']} " + (
                f"{s['before']} -> {s['after']}" if s["change"] == "update" else "")))


def _run_many(args: argparse.Namespace, cfg: Config, store: Store, jobs: list[tuple[str, RunOptions]]) -> int:
    """Each job is queued like any other trigger's run, then claimed and executed here, in this process."""
    from syncdash.engine import Engine, queued_options
    from syncdash.store import queue
    from syncdash.store.db import owner_id

    engine = Engine(store, cfg)
    from syncdash.store.ratelimit import install

    install(store)  # `rate_limit:` is shared with every daemon and `run` on this store
    startup_done()  # the imports are over; the runs' batches allocate with the collector on (main.py)
    cancel = install_cancel_handlers()
    live = sys.stderr.isatty() and not getattr(args, "json", False)
    results: list[RunResult] = []
    busy = False
    owner = owner_id()
    with render.ProgressView(live) as view:
        for name, opts in jobs:
            if cancel.is_set():
                break
            src = cfg.source(name)
            rid = queue.enqueue(store, name, trigger=opts.trigger, kind=src.kind if src else "",
                                options=queued_options(opts), parent_run_id=opts.retry_of)
            assert rid is not None
            if queue.claim(store, owner, run_id=rid) is None:
                queue.drop(store, rid)
                busy = True
                render.err.print(f"[yellow]{esc(name)}: already running ({esc(_running_run(store, name))})[/]")
                continue
            opts.run_id = rid
            opts.cancel = cancel
            opts.on_progress = view.update
            try:
                results.append(engine.run(name, opts))
            except AlreadyRunning as e:
                queue.drop(store, rid)
                busy = True
                render.err.print(f"[yellow]{esc(name)}: {esc(e)}[/]")
    if results:  # no daemon alive: this process delivers its runs' events (a failed delivery only warns)
        from syncdash.service.followup import deliver_own_events

        for warning in deliver_own_events(store, cfg, results):
            render.err.print(f"[yellow]warning: {esc(warning)}[/]")
    if getattr(args, "json", False):
        from syncdash.store.queries import run_json

        render.print_json([{**run_json(run), "sample": r.sample} for r in results
                           if (run := store.run_row(r.run_id)) is not None])
    else:
        for r in results:
            src = cfg.source(r.source)
            _print_result(r, jobs[0][1].dry_run if jobs else False, src.kind if src else "")
    return _exit_for(results, busy)


def _running_run(store: Store, source: str) -> str:
    from syncdash.store.queries import running_run

    run = running_run(store, source)
    if run is None:
        return "another process holds its lease"
    return f"run {run.id}, {(run.owner or '?').split(':')[0]}"


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.all and args.names:
        raise UsageError("give source names or --all, not both")
    # --all: every source and push; flows run their steps again, so they are run by name
    names = [s.name for s in cfg.source_list if s.kind != "flow"] if args.all else list(args.names)
    if not names:
        raise UsageError("which sources? give one or more names, or --all")
    for n in names:
        _source_arg(cfg, n)
    from syncdash.engine import RunOptions  # after the checks: a typo is reported without the import wait

    store = open_store(cfg.database)
    if args.limit_pages is not None and args.limit_pages < 1:
        raise UsageError("--limit-pages must be 1 or more")
    if args.limit_pages is not None and not args.dry_run:
        raise UsageError("--limit-pages needs --dry-run: a partial full sync would delete what it did not read")
    jobs = [(n, RunOptions(trigger="cli", full=args.full, dry_run=args.dry_run, limit_pages=args.limit_pages,
                           backfill_from=args.backfill_from)) for n in names]
    if args.queue:
        from syncdash.engine import queued_options
        from syncdash.store import queue

        kinds = {s.name: s.kind for s in cfg.source_list}  # every name was checked above
        ids = [queue.enqueue(store, n, trigger="cli", kind=kinds[n], options=queued_options(o)) for n, o in jobs]
        if args.json:
            render.print_json([{"source": n, "run_id": i} for (n, _), i in zip(jobs, ids, strict=True)])
        else:
            for (n, _), i in zip(jobs, ids, strict=True):
                render.out.print(f"{esc(n)}: run {i} queued")
        return EXIT_OK
    return _run_many(args, cfg, store, jobs)


def cmd_retry(args: argparse.Namespace) -> int:
    from syncdash.engine import RunOptions
    from syncdash.store.commands import why_no_item_retry
    from syncdash.store.queries import flow_steps, retry_outcome, retryable_open_errors

    cfg = _config(args)
    store = open_store(cfg.database)
    run = store.get_run(args.run)
    if run is None:
        raise UsageError(f"no run {args.run}")
    if cfg.source(run.source) is None:
        raise UsageError(f"run {run.id} belongs to source {run.source!r}, which is not in {cfg.file}")
    # a flow's failed items are its step runs': each step with some is retried as its own run
    targets = [run] if run.kind != "flow" else flow_steps(store, run.id or 0)
    counts = {r.id: retryable_open_errors(store, [r.id or 0]) for r in targets}
    jobs = [(r.source, RunOptions(trigger="retry", retry_of=r.id)) for r in targets if counts[r.id]]
    if not jobs:
        if getattr(args, "json", False):
            render.print_json([])  # scripts always get JSON: no retry run, so an empty list of runs
        else:
            render.out.print(f"run {run.id} has no unresolved retryable errors")
        return EXIT_OK
    for source in dict.fromkeys(src for src, _opts in jobs):
        if (why := why_no_item_retry(cfg, source)) is not None:
            raise UsageError(why)  # nothing runs: re-reading everything is `syncdash run`, not a retry
    for r in targets:
        if counts[r.id]:
            render.err.print(f"retrying {counts[r.id]} failed item(s) of run {r.id} ({r.source})")
    code = _run_many(args, cfg, store, jobs)
    summary = retry_outcome(store, [r.id or 0 for r in targets])
    if not getattr(args, "json", False):
        render.out.print("items: " + esc(", ".join(f"{v} {k}" for k, v in sorted(summary.items()))))
    return code


# ---- status / runs / show / errors ----------------------------------------------------------------

def store_line(cfg: Config) -> str:
    """Where this config's history lives: the `store:` line of `status` (and the console's header)."""
    from syncdash.common.dialect import mask_url
    from syncdash.config.load import is_project_store

    where = cfg.redact(mask_url(cfg.database or _default_database_url()))
    if is_project_store(cfg):
        return f"{where} (this config's own; set `database:` to choose)"
    return where


def store_location(cfg: Config) -> str:
    """Where the store is, for `status --json`: an SQLite store's file path, else its URL, password masked."""
    from syncdash.common.dialect import mask_url, sqlite_path

    url = cfg.database or _default_database_url()
    path = sqlite_path(url)
    return str(path) if path is not None else cfg.redact(mask_url(url))


def cmd_status(args: argparse.Namespace) -> int:
    from syncdash.store.health import live_daemons
    from syncdash.store.queries import source_statuses
    from syncdash.store.rows import utcnow

    cfg = _config(args)
    store = open_reader(cfg.database)
    now = utcnow()
    statuses = source_statuses(store, cfg, now)
    daemons = live_daemons(store, now)
    if args.json:  # each row says where the store is, as the text's `store:` line does (the list stays a list)
        where = store_location(cfg)
        render.print_json([{**s.json(now), "store": where} for s in statuses])
        return EXIT_OK
    t = render.Table(header_style="bold")
    for c in ("source", "kind", "health", "schedule", "next run", "last run", "last success"):
        t.add_column(c)
    for row in statuses:
        run, st, src = row.last_run, row.state, row.config
        style = render.HEALTH_STYLE.get(row.health, "")
        sched = (row.schedule or "-") + (" (override)" if row.schedule_override else "")
        if not src.enabled:
            sched += " (disabled)"
        t.add_row(esc(src.name), esc(src.kind), f"[{style}]{esc(row.health)}[/]", esc(sched),
                  esc(render.until_ts(row.next_fire, now)) if row.next_fire else "-",
                  f"#{run.id} {esc(run.status)} {render.age(run.started_at)}" if run else "-",
                  render.age(st.last_success_at) if st and st.last_success_at else "-")
    render.out.print(t)
    for row in statuses:  # an interrupted run resumes where it stopped: say where, in words
        run = row.last_run
        if run is not None and run.status == RunStatus.INTERRUPTED and run.checkpoint and not run.dry_run:
            render.out.print(f"{esc(row.config.name)}: run {run.id} resumes at "
                             f"{esc(render.checkpoint_text(run.checkpoint))}")
    if daemons:
        who = ", ".join(f"{d.owner.split(':')[0]} ({d.kind}, {d.workers} worker(s))" for d in daemons)
        render.out.print(f"daemon: {esc(who)}")
    else:
        render.out.print("daemon: none running (`syncdash daemon` runs the schedules)")
    render.out.print(f"store: {esc(store_line(cfg))}")
    return EXIT_OK


def _state_update(store: Store, name: str, **values: object) -> None:
    from syncdash.store.models import SourceState

    with store.tx() as s:
        st = s.get(SourceState, name) or SourceState(source=name)
        for k, v in values.items():
            setattr(st, k, v)
        s.add(st)


def _source_arg(cfg: Config, name: str) -> None:
    if cfg.source(name) is None:
        from syncdash.common.suggest import did_you_mean

        names = [s.name for s in cfg.source_list]
        raise UsageError(f"unknown source {name!r}{did_you_mean(name, names)} "
                         f"(sources in {cfg.file}: {', '.join(names) or 'none'})")


def cmd_pause(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _source_arg(cfg, args.name)
    _state_update(open_store(cfg.database), args.name, paused=True)
    render.out.print(f"{esc(args.name)}: paused (its schedule does not fire; `syncdash resume {esc(args.name)}`)")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _source_arg(cfg, args.name)
    _state_update(open_store(cfg.database), args.name, paused=False)
    render.out.print(f"{esc(args.name)}: resumed")
    return EXIT_OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from syncdash.common.schedule import ScheduleError, parse_schedule

    cfg = _config(args)
    _source_arg(cfg, args.name)
    store = open_store(cfg.database)
    from syncdash.store.state import set_schedule_override

    if args.reset:
        set_schedule_override(store, args.name, None)
        configured = getattr(cfg.source(args.name), "schedule", None) or "none"
        render.out.print(f"{esc(args.name)}: back to the config's schedule ({esc(configured)})")
        return EXIT_OK
    text = f"every {args.every}" if args.every else args.cron
    if args.every and args.every.startswith("every "):
        text = args.every
    try:
        sched = parse_schedule(text, args.timezone)
    except ScheduleError as e:
        raise UsageError(f"{args.name}: {e}") from None
    override = {"schedule": text}
    if args.timezone:
        override["timezone"] = args.timezone
    set_schedule_override(store, args.name, override)
    render.out.print(f"{esc(args.name)}: schedule {esc(sched.describe())} (overrides the config until "
                     f"`syncdash schedule {esc(args.name)} --reset`)")
    return EXIT_OK


def cmd_state(args: argparse.Namespace) -> int:
    from syncdash.store import state

    cfg = _config(args)
    _source_arg(cfg, args.name)
    if args.stream and args.set_cursor is None:
        raise UsageError("--stream goes with --set-cursor")
    store = open_store(cfg.database)
    if args.reset:
        state.reset_state(store, args.name)
        src = cfg.source(args.name)
        inc = getattr(src, "incremental", None)
        start = f"from initial {inc.initial!r}" if inc is not None and inc.initial else "from the start"
        render.err.print(f"{esc(args.name)}: state reset; the next run reads {esc(start)}")
    elif args.set_cursor is not None:
        try:
            state.set_cursor(store, args.name, args.set_cursor, args.stream)
        except ValueError as e:
            raise UsageError(f"{args.name}: {e}") from None
        render.err.print(f"{esc(args.name)}: cursor set; the next incremental run starts after it")
    now = state.read_state(store, args.name)
    if args.json:
        render.print_json(now.json())
        return EXIT_OK
    o = render.out
    o.print(f"[bold]{esc(args.name)}[/]")
    for stream, record in now.files_read.items():
        o.print(esc(f"  files read ({stream}): {state.files_read_words(record)}"))
    if now.cursor:
        for stream, value in now.cursor.items():
            o.print(esc(f"  cursor ({stream}): {value}"))
    elif not now.files_read:
        o.print("  cursor: none (the next incremental run starts from `initial`)")
    if now.checkpoint_run is not None:
        o.print(f"  checkpoint: run {now.checkpoint_run} was interrupted; the next run resumes it at "
                f"{esc(render.checkpoint_text(now.checkpoint))}")
    else:
        o.print("  checkpoint: none (no interrupted run to resume)")
    if now.breakers:
        for b in now.breakers:
            until = f", retry at {b.retry_at:%Y-%m-%d %H:%M:%S}Z" if b.retry_at and b.state != "closed" else ""
            o.print(esc(f"  breaker {b.host}: {b.state}, {b.failures} failure(s){until}"
                        + (f" ({cfg.redact(b.last_error)})" if b.last_error else "")))
    else:
        o.print("  breakers: none")
    return EXIT_OK


def http_settings(cfg: Config, args: argparse.Namespace) -> HttpApiConfig | None:
    """The HTTP API's settings: daemon.http, with --http's address beating its listen. --once never serves it
    (the process exits when the queue is empty), so --http with --once is a usage error."""
    import os

    from pydantic import ValidationError

    from syncdash.config.models import HttpApiConfig

    if args.http is None:
        return None if args.once else cfg.daemon.http
    if args.once:
        raise UsageError("--http needs a daemon that keeps running; --once exits when the queue is empty")
    base = cfg.daemon.http.model_dump() if cfg.daemon.http is not None else {
        "token": os.environ.get("SYNCDASH_API_TOKEN") or None}
    try:
        settings = HttpApiConfig.model_validate({**base, "listen": args.http})
    except ValidationError as e:
        reason = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise UsageError(f"--http {args.http}: {reason}") from None
    for secret in settings.secret_values():
        cfg.add_secret(secret)
    render.set_secrets(cfg.secrets)
    return settings


def cmd_daemon(args: argparse.Namespace) -> int:
    import logging
    import signal

    from syncdash.service.daemon import Daemon
    from syncdash.service.logs import JsonLogFormatter, TextLogFormatter

    cfg = _config(args)
    store = open_store(cfg.database)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if args.log_format == "json" else TextLogFormatter())
    root = logging.getLogger("syncdash")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    settings = http_settings(cfg, args)
    http = None
    if settings is not None:
        try:
            from syncdash.api.server import ApiService
        except ImportError as e:
            raise HttpApiError(f"the HTTP API needs starlette and uvicorn ({e.name} is missing): "
                               "pip install 'syncdash[api]'") from None
        http = ApiService(settings)
    daemon = Daemon(cfg, store, workers=args.workers or cfg.daemon.workers, once=args.once, http=http)

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("syncdash.daemon").info("signal %s: finishing the current batches, then stopping",
                                                   signal.Signals(signum).name)
        daemon.stop()

    def on_hup(_signum: int, _frame: object) -> None:
        logging.getLogger("syncdash.daemon").info("signal SIGHUP: reloading the config")
        daemon.request_reload()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    return daemon.run()


def cmd_console(args: argparse.Namespace) -> int:
    from syncdash.tui.app import NoConfigApp, SyncdashApp

    try:
        cfg = _config(args)
    except ConfigError as e:
        if "no config file" not in str(e):
            raise  # a broken config: file:line: key: reason, on stderr like every other command
        NoConfigApp(str(e)).run()
        return EXIT_USAGE
    store = open_store(cfg.database)
    SyncdashApp(cfg, store, host=False if args.attach_only else None).run()
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    from syncdash.store.retention import cleanup

    cfg = _config(args)
    store = open_store(cfg.database)
    counts = cleanup(store.engine, cfg.retention, dry_run=args.dry_run)
    if args.json:
        render.print_json(counts)
    else:
        verb = "would delete" if args.dry_run else "deleted"
        render.out.print(f"{verb}: " + ", ".join(f"{n} {t.removeprefix('syncdash_')}" for t, n in counts.items()))
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from syncdash.store.queries import RunFilter, run_json, runs_page

    store, _ = _store_for_reading(args)
    runs = runs_page(store, RunFilter(source=args.source, status=args.status), limit=max(1, args.limit)).items
    if args.json:
        render.print_json([run_json(r) for r in runs])
    elif not runs:
        render.out.print("no runs yet")
    else:
        render.out.print(render.runs_table(runs))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from syncdash.store.queries import CHANGE_KINDS, iso, run_detail, run_detail_json

    store, cfg = _store_for_reading(args)
    detail = run_detail(store, args.run, changes_limit=args.changes)
    if detail is None:
        raise UsageError(f"no run {args.run}")
    if args.json:
        render.print_json(run_detail_json(detail, cfg))
        return EXIT_OK
    run, o = detail.run, render.out
    style = render.STATUS_STYLE.get(run.status, "")
    o.print(f"[bold]run {run.id}[/] {esc(run.source)} ({esc(run.kind)}) [{style}]{esc(run.status)}[/]"
            f"{' dry run' if run.dry_run else ''}, {esc(run.mode)}, trigger {esc(run.trigger)}, started "
            f"{iso(run.started_at)}, took {render.duration(run)}"
            + (f", resumed {run.resumes}x" if run.resumes else ""))
    o.print(f"counts: {run.inserted} inserted, {run.updated} updated, {run.unchanged} unchanged, "
            f"{run.deleted} deleted, {run.failed} failed, {run.skipped} skipped")
    if run.error:
        o.print(f"[red]error ({esc(run.error_type)}):[/] {esc(run.error)}")
    for w in detail.warnings:
        o.print(f"[yellow]warning:[/] {esc(w)}")
    o.print("phases:")
    width = max([9, *(len(p.name) for p in detail.phases)])
    for p in detail.phases:
        took = (p.finished_at - p.started_at).total_seconds() if p.finished_at and p.started_at else None
        total = f"/{p.total}" if p.total is not None else ""
        o.print(esc(f"  {p.name:{width}} {p.status:8} {p.done}{total} {p.unit}"
                    + (f" in {render.seconds(took)}" if took is not None else "")))
    if detail.steps:
        o.print("step runs (`syncdash show RUN` for each one's errors and changes):")
        for r in detail.steps:
            st = render.STATUS_STYLE.get(r.status, "")
            o.print(f"  run {r.id} {esc(r.source)} [{st}]{esc(r.status)}[/]: {render.count_words(r)}"
                    + (f" ({esc(r.error)})" if r.error else ""))
    errors = detail.errors
    if errors.total:
        o.print(f"errors ({errors.total}, first {len(errors.first)}):")
        for e in errors.first:
            o.print(esc(f"  {e.item or '-'} [{e.error_type}] {e.message}" + (" (resolved)" if e.resolved_at else "")))
    if run.kind != "flow":
        o.print("what changed:")
    for kind in CHANGE_KINDS:
        n = detail.change_counts[kind]
        if not n:
            continue
        o.print(f"  {kind}s ({n} recorded):")
        for c in detail.changes[kind]:
            key = ", ".join(map(str, c.key))
            if kind == "update" and c.before and c.after:
                b, a = c.before, c.after
                diffs = "; ".join(f"{f}: {b[f]!r} -> {a[f]!r}" for f in a)
                o.print(esc(f"    {key}: {diffs}"))
            else:
                o.print(esc(f"    {key}"))
    if run.checkpoint:  # where a resume continues, as fields (the raw JSON is in `show --json`)
        o.print(esc(f"checkpoint: {render.checkpoint_text(run.checkpoint)}"))
    o.print(esc(f"rerun: {detail.rerun.command(cfg)}"))
    return EXIT_OK


def cmd_errors(args: argparse.Namespace) -> int:
    from syncdash.store.queries import ErrorFilter, error_json, errors_page, last_seen

    store, cfg = _store_for_reading(args)
    if args.run is not None and store.get_run(args.run) is None:
        raise UsageError(f"no run {args.run}")
    # a flow's errors are its steps' (each step is its source's own run)
    where = ErrorFilter(source=args.source, run_id=args.run, resolved=None if args.all else False)
    errors = errors_page(store, where, limit=max(1, args.limit), newest_first=False).items
    if args.json:
        render.print_json([error_json(e) for e in errors])
        return EXIT_OK
    if not errors:
        render.out.print("no unresolved errors" if not args.all else "no errors")
        return EXIT_OK
    # a CSV item is `<absolute file>:<line>`; beside the config that is just `orders.csv:3`, leaving the
    # message its width (JSON keeps the stored item as is)
    here = str(Path(cfg.file).resolve().parent) + os.sep if cfg is not None and cfg.file else None

    def item(e: ItemError) -> str:
        text = e.item or "-"
        return text[len(here):] if here and text.startswith(here) else text

    t = render.Table(header_style="bold")
    for c in ("id", "run", "source", "item", "column", "type", "message", "seen", "retry"):
        t.add_column(c, overflow="fold", no_wrap=c == "seen")
    for e in errors:
        t.add_row(str(e.id), str(e.run_id), esc(e.source), esc(item(e)), esc(e.column or "-"),
                  esc(e.error_type), esc(e.message),
                  esc(f"{e.occurrences or 1}x, last {last_seen(e):%Y-%m-%d %H:%M}"),
                  esc(("yes" if e.retryable else "no") + (f" ({e.resolution})" if e.resolved_at else "")))
    render.out.print(t)
    return EXIT_OK


# ---- export -----------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from syncdash.common.dialect import mask_url
    from syncdash.common.files import open_private
    from syncdash.targets import open as target_db
    from syncdash.targets.table import q

    url, cfg = _config_for_reading(args)
    store = open_store(url)
    url = None
    if cfg is not None:  # a source's table lives in that source's target database
        for src in cfg.source_list:
            if any(t == args.table for t, _ in src.target_tables()):
                url = target_db.target_url(cfg, src)
                break
        else:
            url = target_db.target_url(cfg, None)
    where_db = mask_url(url or store.url)
    try:  # only names a config could give a target table: never the store's own (any case) or sqlite_*
        check_identifier(args.table, "table")
    except ValueError:
        raise UsageError(f"no table {args.table!r} in {where_db}") from None
    db = target_db.connect(store, url)
    try:
        if args.table not in db.table_names(args.table):
            raise UsageError(f"no table {args.table!r} in {where_db}")
        where = "" if args.include_deleted else " WHERE _deleted_at IS NULL"
        try:
            cur = db.execute(f"SELECT * FROM {q(args.table)}{where}")
        except Exception:
            cur = db.execute(f"SELECT * FROM {q(args.table)}")
        cols = [d[0] for d in cur.description]
        # syncdash's bookkeeping columns (row hash, PostgreSQL's search vector) are not the user's data
        keep = [i for i, c in enumerate(cols) if c not in ("_hash", "_search")]
        names = [cols[i] for i in keep]
        try:
            ctx = (open_private(args.output, "w", newline="", encoding="utf-8")  # 0600: the rows of a system
                   if args.output else nullcontext(sys.stdout))
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
        n = 0
        with ctx as fh:
            if args.format == "csv":
                w = csv.writer(fh)
                w.writerow(names)
                while chunk := cur.fetchmany(5000):
                    w.writerows([[r[i] for i in keep] for r in chunk])
                    n += len(chunk)
            else:
                while chunk := cur.fetchmany(5000):
                    for r in chunk:
                        fh.write(json.dumps({c: r[i] for c, i in zip(names, keep, strict=True)},
                                            ensure_ascii=False, default=str) + "\n")
                    n += len(chunk)
    finally:
        db.close()
    if args.output:
        render.err.print(f"wrote {n} rows to {esc(args.output)}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """What this machine gives syncdash: the config, the store, database drivers, and the browser of each web
    source (which one, found how, its version). Non-zero when something a configured source needs is missing."""
    import importlib.metadata as md
    import platform

    from syncdash.common.dialect import mask_url
    from syncdash.kinds.web.browser import BrowserNotFound, browser_version, find_browser

    problems = 0

    def line(ok: bool | None, what: str, detail: str) -> None:
        mark = {True: "[green]ok[/]  ", False: "[red]FAIL[/]", None: "[yellow]--[/]  "}[ok]
        render.out.print(f"{mark} {what:<18} {detail}")

    line(True, "python", f"{platform.python_version()} ({esc(sys.executable)})")
    cfg: Config | None = None
    try:
        cfg = _config(args)
        line(True, "config", f"{esc(cfg.file)}: {len(cfg.source_list)} source(s)")
    except ConfigError as e:
        line(None if not args.config else False, "config", esc(str(e).splitlines()[0]))
        problems += bool(args.config)
    url = (cfg.database if cfg else None) or _default_database_url()
    try:
        store = open_store(url)
        with store.engine.connect():
            pass
        line(True, "store", esc(mask_url(url)))
    except Exception as e:  # any failure to open it is what doctor is for
        line(False, "store", f"{esc(mask_url(url))}: {esc(str(e).splitlines()[0])}")
        problems += 1
    for pkg, why in (("psycopg", "PostgreSQL stores and targets"), ("pymysql", "MySQL/MariaDB targets"),
                     ("playwright", "web sources")):
        try:
            line(True, pkg, f"{md.version(pkg)} ({why})")
        except md.PackageNotFoundError:
            line(None, pkg, f"not installed ({why}: pip install 'syncdash[{pkg if pkg == 'playwright' else ''}]')")
    webs = [s for s in (cfg.source_list if cfg else []) if s.kind == "web"]
    wanted: dict[str | None, str | None] = {
        getattr(getattr(s, "browser", None), "executable", None): s.name for s in webs} or {None: None}
    for exe, src in wanted.items():
        label = f"browser ({src})" if src else "browser"
        try:
            found = find_browser(exe, source=src)
        except BrowserNotFound as e:
            line(False if src else None, label, esc(str(e)))
            problems += bool(src)
            continue
        line(True, label, f"{esc(found.path)} (found by {found.how}): {esc(browser_version(found.path))}")
    return EXIT_OK if not problems else EXIT_FAILED
