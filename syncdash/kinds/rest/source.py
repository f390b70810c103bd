"""`kind: rest`: pages of JSON records from an HTTP API, one stream (phase) per endpoint.

A page is a batch: its records, and the state of the page after it as the checkpoint, commit
together, so a resumed run asks for exactly the next page and refetches nothing that committed.
Page and offset pagination with a known total fetch ahead in a thread pool (`concurrency`) while the
engine writes in order. The whole stream (fetch threads, JSON parsing, mapping) runs in the engine's
read-ahead child process (forked before the first request, see reader_hooks), so the run's process only
writes; streams whose requests need the store or this process (a `rate_limit:` bucket, an OAuth2 token,
for_each's parent rows) stay here.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from syncdash.config.tenants import TENANT_FIELD
from syncdash.errors import FetchError, SchemaMismatch
from syncdash.kinds.contract import (
    Batch,
    Capabilities,
    CheckpointInvalid,
    ReaderHooks,
    RecordProblem,
    RunContext,
    Source,
    Stream,
)
from syncdash.kinds.mapping import Mapper, build_mapper
from syncdash.kinds.rest.client import Response, RestClient, Wait, configured_origins
from syncdash.kinds.rest.config import ApiKeyAuth, OAuth2ClientCredentials, RestSourceConfig, strip_userinfo
from syncdash.kinds.rest.paging import Pager, PathNotFound, get_path

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RestSource(Source):
    """The adapter the registry hands out: a container of streams sharing one client."""

    # no CSV-style read-ahead (that forks after the first batch, when fetch threads run): a stream forks
    # whole through reader_hooks instead; full syncs keep their seen keys in the store, so a resume must not
    # refetch what committed; streams may keep an incremental cursor
    capabilities = Capabilities(read_ahead=False, replayable=False, incremental=True)
    config: RestSourceConfig
    unit = "records"

    def __init__(self, config: RestSourceConfig, tenant: str | None = None) -> None:
        self.config = config
        self.ctx = RunContext()
        self._client: RestClient | None = None
        self._tallies: list[ClientTally] = []  # requests and waits of clients that ran in a reader child
        self._inherited: RestClient | None = None  # in a reader child: the run's process's client, unused
        self._groups: list[RestSource] = []
        if config.for_each_tenant and tenant is None:
            # one group (own client: own credentials) per tenant; each stream a phase named after its tenant
            from syncdash.config.tenants import expand

            self._groups = [RestSource(c, tenant=t) for t, c in expand(config)]
            self._streams = [st for g in self._groups for st in g.streams()]
            return
        if config.streams:
            self._streams = [RestStreamSource(self, config.stream_config(i), st.name, tenant)
                             for i, st in enumerate(config.streams)]
        else:
            self._streams = [RestStreamSource(self, config, "load", tenant)]

    def bind(self, ctx: RunContext) -> None:
        self.ctx = ctx
        for g in self._groups:
            g.bind(ctx)

    def http_clients(self) -> list[RestClient | ClientTally]:
        """The clients this run used (one per tenant, and each reader child's): their waits and request counts
        go into the run."""
        own: list[RestClient | ClientTally] = [self._client] if self._client is not None else []
        return own + self._tallies + [c for g in self._groups for c in g.http_clients()]

    @property
    def client(self) -> RestClient:
        if self._client is None:
            self._client = RestClient(self.config, store=self.ctx.store, redact=self.ctx.redact,
                                      add_secret=self.ctx.add_secret, cancel=self.ctx.cancel)
        return self._client

    def streams(self) -> list[RestStreamSource]:
        return self._streams

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for g in self._groups:
            g.close()

    def describe(self) -> list[str]:
        lines = []
        for s in self._streams:
            lines.extend(s.describe())
        return lines

    def total(self) -> int | None:
        return None

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        return self._streams[0].batches(start, stop, want)


class RestStreamSource(Stream):
    """One endpoint into one table; what the engine runs as one load phase."""

    config: RestSourceConfig

    def __init__(self, parent: RestSource, config: RestSourceConfig, name: str, tenant: str | None = None) -> None:
        self.parent = parent
        self.config = config
        self.name = name  # the stream's own name ("load" for a one-endpoint source): what for_each refers to
        # the phase: unique in the run; with tenants the tenant's name (and the stream's, with several)
        self.phase = name if tenant is None else (tenant if name == "load" else f"{name} {tenant}")
        self.tenant = tenant
        self.scope = {} if tenant is None else {config.tenant_column: tenant}
        self.warnings: list[str] = []
        self.cursor_max: Any = None
        self.truncated: str | None = None  # why the stream did not read everything (then nothing is deleted)
        pag = config.pagination
        self.unit = "records" if (pag is not None and pag.total_path) or config._for_each else "pages"
        self._mapper: Mapper | None = None

    # ---- protocol ------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        c = self.config
        pag = c.pagination.type if c.pagination else "none"
        url = strip_userinfo(c.url or "")
        what = f"for each row of stream {c._for_each}: {c.method} {url}" if c._for_each else f"{c.method} {url}"
        extra = [f"pagination {pag}"]
        if c.incremental:
            extra.append(f"incremental on {c.incremental.cursor_field} via ?{c.incremental.param}=")
        if c.rate_limit:
            extra.append(f"rate limit {c.rate_limit}")
        if c.concurrency > 1:
            extra.append(f"concurrency {c.concurrency}")
        name = "" if self.phase == "load" else f"stream {self.phase}: "
        return [f"{name}{what} -> table {c.table} ({', '.join(extra)})"]

    def total(self) -> int | None:
        return None

    @property
    def mapper(self) -> Mapper:
        if self._mapper is None:
            c = self.config
            assert c.fields is not None and c.primary_key is not None
            paths = {col: str(c.source_name_of(col)) for col in c.fields}
            self._mapper = build_mapper(c.fields, c.primary_key, paths=paths, source_names=paths)
        return self._mapper

    # ---- the read-ahead child -----------------------------------------------------------------------

    def reader_hooks(self) -> ReaderHooks | None:
        """Run this stream in the read-ahead child, unless a request needs what only this process has:
        a rate-limit bucket (shared through the store), an OAuth2 token (cached here, redacted by this
        process), or the parent rows of a for_each stream (read from the target)."""
        c, src = self.config, self.parent
        if c._for_each or c.rate_limit is not None or src.config.rate_limit is not None \
                or isinstance(c.auth, OAuth2ClientCredentials) or isinstance(src.config.auth, OAuth2ClientCredentials):
            return None
        store = src.ctx.store
        known: dict[str, Any] = {}
        if store is not None:  # the breakers the child may meet, read here: the child never reads the store
            for host in _hosts(src.config):
                known[host] = store.breaker(host)
        return ReaderHooks(mapper=self.mapper, setup=lambda send: self._in_child(known, send),
                           finish=self._child_state, receive=self._from_child)

    def _in_child(self, known: dict[str, Any], send: Callable[[Any], None]) -> None:
        """In the child: a client of its own (never the sockets of one the run's process has), whose breakers
        start from the stored state and send their changes back for the run's process to save."""
        # the child's main thread parses and maps a page for ~4 ms at a time; the fetch threads need the GIL
        # briefly to take each answer off its socket: a 1 ms switch interval (default 5) keeps them from
        # waiting a whole slice, ~20% off the stream's wall time at concurrency 4
        sys.setswitchinterval(0.001)
        src = self.parent
        src._inherited = src._client  # kept, not closed: closing would touch the run's process's connections
        src._client = None
        src.ctx = dataclasses.replace(src.ctx, store=_ChildBreakers(known, send))

    def _child_state(self) -> tuple[str, dict[str, Any]]:
        client = self.parent._client
        return ("state", {"warnings": self.warnings, "cursor_max": self.cursor_max, "truncated": self.truncated,
                          "waits": client.waits if client is not None else [],
                          "attempts": client.attempts if client is not None else 0})

    def _from_child(self, message: Any) -> None:
        kind, payload = message
        if kind == "breaker":
            store = self.parent.ctx.store
            if store is not None:
                store.save_breaker(*payload)
        elif kind == "state":
            self.warnings = payload["warnings"]
            self.cursor_max = payload["cursor_max"]
            self.truncated = payload["truncated"]
            self.parent._tallies.append(ClientTally(payload["waits"], payload["attempts"]))

    # ---- reading ----------------------------------------------------------------------------------

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        if stop is not None:
            raise CheckpointInvalid("REST streams keep their seen keys in the store; nothing to replay")
        if self.config._for_each:
            yield from self._fan_out(start, want)
        elif want is None:
            yield from self._pages(start)
        else:  # a retry: the pages are read again, and only the failed records (page URL, position) go on
            for b in self._pages(None):
                keep = [i for i, ln in enumerate(b.lines) if want(b.file, ln)]
                b.records = [b.records[i] for i in keep]
                b.lines = [b.lines[i] for i in keep]
                b.problems = [p for p in b.problems if want(p.file or b.file, p.line)]
                yield b

    def final_cursor(self) -> Any:
        """The incremental cursor to store once the stream has finished (None: leave it)."""
        return self.cursor_max

    @staticmethod
    def later_cursor(old: Any, new: Any) -> Any:
        """The stored cursor never moves back (a backfill replays history without losing the position)."""
        a, b = _cursor_key(old), _cursor_key(new)
        return new if type(a[1]) is not type(b[1]) or b >= a else old

    # ---- incremental ------------------------------------------------------------------------------

    def _cursor_param(self) -> str | None:
        inc = self.config.incremental
        ctx = self.parent.ctx
        if inc is None or self.config.mode != "incremental" or ctx.full:
            return None
        if ctx.backfill_from is not None:
            return ctx.backfill_from
        value = ctx.cursors.get(self.phase)
        if value is None:  # the first run starts at `initial` as written; lag covers records late to a cursor
            return inc.initial
        if inc.lag and isinstance(value, str):
            dt = _parse_dt(value)
            if dt is not None:
                value = _format_dt(dt - timedelta(seconds=inc.lag), value)
        return str(value)

    def _track_cursor(self, records: list[Any]) -> None:
        inc = self.config.incremental
        if inc is None:
            return
        best = self.cursor_max
        best_key = _cursor_key(best) if best is not None else None
        for r in records:
            try:
                v = get_path(r, inc.cursor_field)
            except PathNotFound:
                continue
            if v is None or v == "":
                continue
            k = _cursor_key(v)
            if best_key is None or (type(k[1]) is type(best_key[1]) and k > best_key):
                best, best_key = v, k
        self.cursor_max = best

    # ---- pages ------------------------------------------------------------------------------------

    def _pages(self, start: dict[str, Any] | None) -> Iterator[Batch]:
        c = self.config
        client = self.parent.client
        ctx = self.parent.ctx
        params = {k: _param(v) for k, v in c.params.items()}
        if start is not None:
            sent = start.get("cursor_param")
            self.cursor_max = start.get("cursor_max")
            state: dict[str, Any] | None = start["page"]
            fetched = int(start.get("fetched", 0))
            total = start.get("total")
        else:
            sent = self._cursor_param()
            state, fetched, total = None, 0, None
        if c.incremental is not None and sent is not None:
            params[c.incremental.param] = sent
        pager = Pager(c.pagination, strip_userinfo(c.url or ""), params)  # page URLs never carry userinfo
        if state is None:
            state = pager.start()
        limit = ctx.limit_pages
        pages_here = 0
        prev_sig: tuple[Any, ...] | None = None
        seen_pages: dict[bytes, int] = {}  # digest of each request of this run -> its page number
        pending: deque[tuple[dict[str, Any], Future[Response]]] = deque()
        pool: ThreadPoolExecutor | None = None
        seq_pool: ThreadPoolExecutor | None = None
        ahead: tuple[dict[str, Any], int] | None = None  # next state to fetch ahead, pages left to fetch
        last: dict[str, Any] | None = None
        records: list[Any] = []
        try:
            while limit is None or pages_here < limit:
                if pending:
                    st, fut = pending.popleft()
                    resp = fut.result()
                elif state is None:
                    break
                else:
                    st = state
                    resp = client.fetch(*pager.request(st))
                records = self._records(resp)
                pages_here += 1
                fetched += len(records)
                if total is None and c.pagination is not None and c.pagination.total_path:
                    total = self._total(resp)
                # a request that repeats ANY earlier page of this run (a cursor or next link going round) ends it
                asked = _request_key(*pager.request(st))
                if asked in seen_pages:
                    raise SchemaMismatch(f"source {c.name}: pagination loop: {resp.url} was already fetched at page "
                                         f"{seen_pages[asked]}; check the pagination settings (or the server)")
                seen_pages[asked] = pages_here
                sig = _page_signature(records)
                if prev_sig is not None and sig == prev_sig and records:
                    raise SchemaMismatch(
                        f"source {c.name}: pagination does not advance: {resp.url} returned the same records as "
                        "the page before; check the pagination settings")
                prev_sig = sig
                if pending:  # fetched ahead: the next page in order is simply the next state
                    nxt: dict[str, Any] | None = pager.ahead(st, 1)
                else:
                    nxt = pager.advance(st, resp.body, resp.headers, pager.request(st)[0], len(records))
                if total is not None and fetched >= total:
                    nxt = None
                if nxt is not None and nxt.get("url"):
                    # a next link to another origin would carry the credentials there: refused (allow_origins)
                    client.check_origin(nxt["url"], f"the next link of page {st.get('n', 0) + 1} ({resp.url})",
                                        came_from=pager.request(st)[0])
                    nxt["url"] = self._strip_auth(strip_userinfo(nxt["url"]))
                # once the total is known, page/offset states can be fetched ahead in parallel
                if (pool is None and nxt is not None and pager.parallel and c.concurrency > 1 and total is not None
                        and not self._short_page(pager, records, fetched, total)):
                    pool = ThreadPoolExecutor(c.concurrency, thread_name_prefix=f"fetch-{c.name}")
                    remaining = -(-(total - fetched) // (pager.page_size or 1))
                    if limit is not None:
                        remaining = min(remaining, limit - pages_here)
                    if c.pagination is not None and c.pagination.max_pages is not None:
                        remaining = min(remaining, c.pagination.max_pages - nxt["n"])
                    ahead = (nxt, max(0, remaining))
                if pool is not None:  # keep a bounded window in flight: memory stays flat however many pages
                    ahead = self._top_up(pool, pager, client, ahead, pending, 2 * c.concurrency)
                elif nxt is not None and not pending and (limit is None or pages_here < limit):
                    # one request at a time still, but the next page travels while this one is written
                    if seq_pool is None:
                        seq_pool = ThreadPoolExecutor(1, thread_name_prefix=f"fetch-{c.name}")
                    pending.append((nxt, seq_pool.submit(client.fetch, *pager.request(nxt))))
                self._track_cursor(records)
                ck = {"page": nxt, "fetched": fetched, "total": total, "cursor_param": sent,
                      "cursor_max": self.cursor_max}
                yield self._batch(records, resp, ck, fetched, total, pages_here, st)
                state, last = nxt, st
                if state is None:
                    break
        finally:
            for _, fut in pending:
                fut.cancel()
            for p in (pool, seq_pool):
                if p is not None:
                    p.shutdown(wait=True, cancel_futures=True)
        max_pages = c.pagination.max_pages if c.pagination is not None else None
        capped = max_pages is not None and state is None and bool(records) and last is not None \
            and last.get("n", 0) + 1 >= max_pages
        if capped:
            self.truncated = f"stream {self.phase} stopped at max_pages ({max_pages})"
        elif total is not None and fetched < total and limit is None:
            self.truncated = f"stream {self.phase}: pagination stopped early"
            self.warnings.append(f"stream {self.phase}: pagination stopped early: got {fetched} of {total} records "
                                 f"({pages_here} page(s)); check the pagination settings")

    @staticmethod
    def _top_up(pool: ThreadPoolExecutor, pager: Pager, client: RestClient, ahead: tuple[dict[str, Any], int] | None,
                pending: deque[tuple[dict[str, Any], Future[Response]]], window: int
                ) -> tuple[dict[str, Any], int] | None:
        while ahead is not None and ahead[1] > 0 and len(pending) < window:
            st, left = ahead
            pending.append((st, pool.submit(client.fetch, *pager.request(st))))
            ahead = (pager.ahead(st, 1), left - 1)
        return ahead

    @staticmethod
    def _short_page(pager: Pager, records: list[Any], fetched: int, total: int) -> bool:
        """A first page shorter than asked while more exist: the server caps the size; stay sequential."""
        size = pager.page_size
        return size is not None and len(records) < size and fetched < total

    def _records(self, resp: Response) -> list[Any]:
        c = self.config
        try:
            found = get_path(resp.body, c.records)
        except PathNotFound as e:
            keys = ", ".join(map(str, resp.body)) if isinstance(resp.body, dict) else type(resp.body).__name__
            raise FetchError(f"{resp.url}: records path {c.records!r} not found (no {str(e)!r}); the response has: "
                             f"{keys}", error_type="parse", url=resp.url, retryable=False) from None
        if found is None:
            return []
        if isinstance(found, dict):
            if c.records is None and c.pagination is not None and c.pagination.type != "none":
                keys = ", ".join(map(str, found))
                raise FetchError(f"{resp.url}: the response is an object, not a list; set records: to the "
                                 f"path of the record list (keys: {keys})", error_type="parse", url=resp.url,
                                 retryable=False)
            return [found]
        if not isinstance(found, list):
            raise FetchError(f"{resp.url}: records {c.records or '(body)'} is a {type(found).__name__}, not a list",
                             error_type="parse", url=resp.url, retryable=False)
        if self.tenant is not None:
            for r in found:
                if isinstance(r, dict):
                    r[TENANT_FIELD] = self.tenant
        return found

    @property
    def _tag(self) -> dict[str, str]:
        return {} if self.tenant is None else {TENANT_FIELD: self.tenant}

    def _total(self, resp: Response) -> int | None:
        c = self.config
        assert c.pagination is not None and c.pagination.total_path
        try:
            v = get_path(resp.body, c.pagination.total_path)
            return int(v)
        except (PathNotFound, TypeError, ValueError):
            self.warnings.append(f"stream {self.phase}: total_path {c.pagination.total_path!r} not found in "
                                 f"{resp.url}; progress shows pages")
            return None

    def _batch(self, records: list[Any], resp: Response, ck: dict[str, Any], fetched: int, total: int | None,
               pages: int, state: dict[str, Any]) -> Batch:
        problems: list[RecordProblem] = []
        good: list[Any] = []
        lines: list[int] = []
        for i, r in enumerate(records, 1):
            if isinstance(r, dict):
                good.append(r)
                lines.append(i)
            else:
                problems.append(RecordProblem(f"record {i} is a {type(r).__name__}, not an object", "parse",
                                              line=i, file=resp.url, payload=r))
        unit_done = fetched if self.unit == "records" else state.get("n", pages - 1) + 1
        detail = f"page {state.get('n', 0) + 1}" + (f", {fetched} of {total} records" if total else
                                                    f", {fetched} records")
        return Batch(records=good, mapper=self.mapper, lines=lines, file=resp.url, problems=problems,
                     checkpoint=ck, done=unit_done, total=total if self.unit == "records" else None,
                     detail=detail)

    def _strip_auth(self, url: str) -> str:
        """Next links often echo an api_key query parameter: never keep it in a checkpoint (it is re-added)."""
        auth = self.config.auth
        if not (isinstance(auth, ApiKeyAuth) and auth.in_ == "query"):
            return url
        parts = urlsplit(url)
        q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != auth.name]
        return urlunsplit(parts._replace(query=urlencode(q)))

    # ---- for_each: one request per row of an earlier stream ------------------------------------------

    def _fan_out(self, start: dict[str, Any] | None,
                 want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        """One request per parent row. A detail that still fails after its retries is an item error located
        at (this stream's URL, the parent row's position), and the other details load; a retry (`want`)
        fetches only the failed ones again."""
        c = self.config
        ctx = self.parent.ctx
        client = self.parent.client
        parent = next(s for s in self.parent.streams() if s.name == c._for_each)
        template = c._for_each_path or ""
        names = _PLACEHOLDER.findall(template)
        pc = parent.config
        assert pc.fields is not None and pc.table is not None and pc.primary_key is not None
        unknown = [n for n in names if n not in pc.fields]
        if unknown:
            raise SchemaMismatch(f"source {c.name}: stream {self.phase}: path placeholder {{{unknown[0]}}} is not a "
                                 f"field of stream {parent.phase} ({', '.join(pc.fields)})")
        if ctx.parent_rows is None:
            raise SchemaMismatch(f"source {c.name}: stream {self.phase} needs the rows of {parent.phase}")
        rows = ctx.parent_rows(pc.table, list(pc.fields), pc.primary_key, self.scope)
        total = len(rows)
        done = int(start["index"]) if start else 0
        base = strip_userinfo(self.parent.config.base_url or self.parent.config.url or "").rstrip("/")
        per_batch = max(1, min(c.batch_size, 50 * c.concurrency))
        pool = ThreadPoolExecutor(c.concurrency, thread_name_prefix=f"detail-{c.name}")
        limit = ctx.limit_pages
        try:
            while done < total:
                chunk = rows[done:done + per_batch]
                if limit is not None:
                    chunk = chunk[:max(0, limit - done)]
                    if not chunk:
                        break
                picked = [(i, r) for i, r in enumerate(chunk, done + 1) if want is None or want(c.url, i)]
                futures = [self._submit_detail(pool, client, base, template, r) for _, r in picked]
                records: list[Any] = []
                lines: list[int] = []
                problems: list[RecordProblem] = []
                for (i, row), fut in zip(picked, futures, strict=True):
                    rec, problem = fut.result()
                    if problem is not None:
                        problem.line = i
                        problem.file = c.url  # where a retry finds it again (the message names the URL)
                        problem.key = row.get(pc.primary_key[0]) if len(pc.primary_key) == 1 else None
                        problems.append(problem)
                        continue
                    recs = rec if isinstance(rec, list) else [rec]
                    for r in recs:
                        if isinstance(r, dict):
                            records.append({**r, "_parent": row, **self._tag})
                            lines.append(i)
                done += len(chunk)
                if problems and not records and len(problems) == len(picked) > 1 and all(
                        p.error_type in ("network", "timeout") for p in problems):
                    raise FetchError(f"source {c.name}: every detail request of a batch failed; first: "
                                     f"{problems[0].message}", error_type=problems[0].error_type)
                yield Batch(records=records, mapper=self.mapper, lines=lines, file=f"{c.url}", problems=problems,
                            checkpoint={"index": done}, done=done, total=total,
                            detail=f"{done} of {total} {parent.phase} rows")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit_detail(self, pool: ThreadPoolExecutor, client: RestClient, base: str, template: str,
                       row: dict[str, Any]) -> Future[tuple[Any, RecordProblem | None]]:
        """The detail request of one parent row; a row whose values cannot fill the path is an item error."""
        try:
            url = base + "/" + _fill_placeholders(template, row).lstrip("/")
        except ValueError as e:
            done: Future[tuple[Any, RecordProblem | None]] = Future()
            done.set_result((None, RecordProblem(f"stream {self.phase}: {e}", "parse", file=self.config.url,
                                                 retryable=False)))
            return done
        return pool.submit(self._detail, client, url)

    def _detail(self, client: RestClient, url: str) -> tuple[Any, RecordProblem | None]:
        try:
            resp = client.fetch(url)
        except FetchError as e:
            if e.status in (401, 403, 429):
                raise  # credentials or rate limit: every other detail would fail the same way
            if e.status is not None and 400 <= e.status < 500:
                return None, RecordProblem(str(e), "http", file=e.url, retryable=e.status != 404)
            # a 5xx, timeout or network error after the client's retries: this item fails, the others load
            return None, RecordProblem(str(e), e.error_type, file=e.url, retryable=e.retryable)
        try:
            return get_path(resp.body, self.config.records), None
        except PathNotFound:
            return None, RecordProblem(f"{resp.url}: records path {self.config.records!r} not found", "parse",
                                       file=resp.url, payload=resp.body)


@dataclasses.dataclass
class ClientTally:
    """What a client in a reader child did, as the run reports it (the RestClient stayed in the child)."""

    waits: list[Wait]
    attempts: int


class _ChildBreakers:
    """The store as a reader child's breakers see it: the state read before the fork, and every save sent
    back to the run's process, which writes it (in order with the batches, before the next one)."""

    def __init__(self, known: dict[str, Any], send: Callable[[Any], None]) -> None:
        self.known = known
        self.send = send

    def breaker(self, host: str) -> Any:
        return self.known.get(host)

    def save_breaker(self, *args: Any) -> None:
        self.send(("breaker", args))


def _hosts(cfg: RestSourceConfig) -> set[str]:
    """The hosts (as breakers key them: a URL's netloc) a source may send to: its configured URLs' and
    allow_origins'; next links and redirects elsewhere are refused before a breaker is asked."""
    urls = [cfg.url, cfg.base_url, *(st.url for st in cfg.streams or [])]
    hosts = {urlsplit(strip_userinfo(u)).netloc for u in urls if isinstance(u, str)}
    origins, _ = configured_origins(cfg)
    hosts |= {urlsplit(o).netloc for o in origins | set(cfg.allow_origins)}
    return {h for h in hosts if h}


def _param(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _request_key(url: str, params: dict[str, Any]) -> bytes:
    """What identifies a page request (URL and its sorted parameters), as a 16-byte digest: one per page kept."""
    import hashlib

    text = json.dumps([url, sorted((str(k), str(v)) for k, v in params.items())], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _page_signature(records: list[Any]) -> tuple[Any, ...]:
    if not records:
        return ()
    return (len(records), json.dumps(records[0], sort_keys=True, default=str),
            json.dumps(records[-1], sort_keys=True, default=str))


def _parse_dt(v: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("Z", "z")) else v)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _format_dt(dt: datetime, like: str) -> str:
    """Back to the shape the API used: "Z" stays "Z", offsets stay offsets, naive stays naive."""
    if like.endswith(("Z", "z")):
        return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    if _parse_dt(like) is not None and ("+" in like[10:] or like[10:].count("-")):
        return dt.isoformat(timespec="seconds")
    return dt.replace(tzinfo=None).isoformat(timespec="seconds")


def _cursor_key(v: Any) -> tuple[int, Any]:
    """Cursor values compare as datetimes, then numbers, then text."""
    if isinstance(v, bool):
        return (2, str(v))
    if isinstance(v, int | float):
        return (1, float(v))
    s = str(v)
    dt = _parse_dt(s)
    if dt is not None:
        return (0, dt.timestamp())
    try:
        return (1, float(s))
    except ValueError:
        return (2, s)


def _fill_placeholders(template: str, row: dict[str, Any]) -> str:
    """A for_each path with each {column} replaced by that column of the parent row as one path segment:
    reserved characters percent-encoded; `.`, `..` and empty values (which would change the path) refused."""
    def one(m: re.Match[str]) -> str:
        text = str(row[m.group(1)])
        if text in ("", ".", ".."):
            raise ValueError(f"path placeholder {{{m.group(1)}}} is {text!r}, which cannot be one segment of the "
                             "URL path; no request was sent for this row")
        return quote(text, safe="")
    return _PLACEHOLDER.sub(one, template)
