"""`kind: web`: records read off JavaScript-rendered pages by a real headless Chromium (Playwright).

Playwright's async API runs in an event loop of its own, on a thread of its own: the engine (and the console's
loop, when it hosts the run) only ever waits on futures, so nothing blocks an event loop and the sync API's
"no running loop" rule never bites. One browser per run, reused by every page; `concurrency` pages (each in its
own context) serve list pages ({page} URLs are fetched ahead in order) and detail pages.

A list page is a batch; its rows and the position of the page after it (`{page}` number, or the URL reached by
clicking `next` plus how many clicks to replay when the URL does not change) commit together, so a resumed run
opens exactly the next page and re-reads nothing that committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syncdash.common.files import open_private, private_dir
from syncdash.common.resilience import HostBreaker, backoff
from syncdash.errors import CircuitOpen, FetchError, RunCancelled, SchemaMismatch
from syncdash.kinds.contract import Batch, Capabilities, CheckpointInvalid, RecordProblem, RunContext, Source, Stream
from syncdash.kinds.mapping import Mapper, build_mapper
from syncdash.kinds.rest.client import Wait, host_breaker, throttle
from syncdash.kinds.rest.config import origin_of, strip_userinfo
from syncdash.kinds.web.browser import OWNER_SWITCH, find_browser
from syncdash.kinds.web.config import ABSOLUTE_ATTRS, WebField, WebSourceConfig

# one call per page reads every row: a round trip per field would cost more than the page itself
_EXTRACT = """(els, [specs, absolute]) => els.map(el => {
  const out = {};
  for (const [name, sel, attr] of specs) {
    const t = sel ? el.querySelector(sel) : el;
    if (!t) { out[name] = null; continue; }
    let v = attr ? t.getAttribute(attr) : t.textContent;
    if (v !== null && attr && absolute.includes(attr)) { try { v = new URL(v, document.baseURI).href; } catch (e) {} }
    out[name] = v === null ? null : String(v).replace(/\\s+/g, ' ').trim();
  }
  return out;
})"""
_SIGNATURE = "(sel) => Array.from(document.querySelectorAll(sel), e => e.textContent).join('\\u0001')"
_END = object()  # a list page that says there are no more rows


# `browser.timeout` is per page (navigation, wait_for); starting Chromium on a busy machine can take longer than a
# short page timeout, and a source whose pages must answer within 1 s should not fail because the browser took 2
LAUNCH_TIMEOUT = 30.0

class _Transient(Exception):
    """A page attempt that may pass on the next try (navigation error, timeout, a retry_on status)."""

    def __init__(self, message: str, error_type: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


@dataclass
class _Position:
    """How to reach a list page: open `url`, then click `next` `clicks` times."""

    page: int
    url: str
    clicks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"page": self.page, "url": self.url, "clicks": self.clicks}


@dataclass
class _ListPage:
    pos: _Position
    url: str
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    next: _Position | None = None
    end: bool = False


class _LoopThread:
    """A private asyncio loop: Playwright's async API lives here, callers wait on concurrent futures."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.submit(coro).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class WebSource(Source, Stream):
    """The adapter the registry hands out for `kind: web`."""

    # the browser lives in threads of this process: fork-based read-ahead stays off; seen keys are kept in
    # the store: a resume must not re-scrape the committed pages
    capabilities = Capabilities(read_ahead=False, replayable=False)
    config: WebSourceConfig
    unit = "pages"

    def __init__(self, config: WebSourceConfig) -> None:
        self.config = config
        self.ctx = RunContext()
        self._want: Callable[[str | None, int | None], bool] | None = None
        self.warnings: list[str] = []
        self.truncated: str | None = None
        self.waits: list[Wait] = []
        self.attempts = 0  # navigations, retries included (the run's request count)
        self._snapshots: dict[str, tuple[str, str]] = {}
        self._mapper: Mapper | None = None
        self._loop: _LoopThread | None = None
        self._pw: Any = None
        self._browser: Any = None
        self._pool: asyncio.Queue[Any] | None = None
        self._walker: Any = None  # the page that clicks through `next`
        self._breakers: dict[str, HostBreaker] = {}
        self._lock = threading.Lock()

    # ---- protocol ------------------------------------------------------------------------------------

    def bind(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def describe(self) -> list[str]:
        c = self.config
        how = f"{{page}} from {c.pages.start}" if c.paged else f"clicking {c.next!r}" if c.next else "one page"
        extra = [f"pages: {how}" + (f", at most {c.pages.max}" if c.pages.max else "")]
        if c.detail is not None:
            extra.append(f"detail page per row via {c.detail.url_field} ({len(c.detail.fields)} fields)")
        if c.concurrency > 1:
            extra.append(f"concurrency {c.concurrency}")
        if c.rate_limit:
            extra.append(f"rate limit {c.rate_limit}")
        return [f"web {c.plain_url} rows {c.rows!r} -> table {c.table} ({', '.join(extra)})"]

    def total(self) -> int | None:
        return None

    def http_clients(self) -> list[Any]:
        return [self]

    @property
    def mapper(self) -> Mapper:
        if self._mapper is None:
            c = self.config
            paths = {col: col for col in c.fields}
            names = {col: str(c.source_name_of(col)) for col in c.fields}
            self._mapper = build_mapper(c.fields, c.primary_key, paths=paths, source_names=names)
        return self._mapper

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        if stop is not None:
            raise CheckpointInvalid("web sources keep their seen keys in the store; nothing to replay")
        # a retry (`want`): the list is walked again, only the failed rows (page URL, row on the page) have their
        # detail page opened, and only they go on
        self._want = want
        c = self.config
        if start is not None and start.get("page") is None:
            return  # the walk had finished before the crash: only the finalize phase was left
        # strip_userinfo: a checkpoint an older version wrote may still hold the list URL's user:password@
        pos = _Position(int(start["page"]), strip_userinfo(str(start["url"])), int(start.get("clicks", 0))) \
            if start else _Position(c.pages.start, c.page_url(c.pages.start) if c.paged else c.plain_url)
        fetched = int(start.get("fetched", 0)) if start else 0
        read = int(start.get("read", 0)) if start else 0
        self._open()
        limit = self.ctx.limit_pages
        seen: dict[bytes, int] = {}  # digest of each list page's rows -> the page it was read at
        for here, lp in enumerate(self._walk(pos, read), 1):
            if lp.end:
                break
            if lp.records:  # a page that repeats ANY earlier page (a site answering its last page forever)
                digest = _rows_digest(lp.records)
                if digest in seen:
                    raise SchemaMismatch(f"source {c.name}: pagination loop: page {lp.pos.page} ({lp.url}) has the "
                                         f"same rows as page {seen[digest]}, which was already fetched; check "
                                         "pages/next (or set pages.end)")
                seen[digest] = lp.pos.page
            read += 1
            fetched += len(lp.records)
            nxt = lp.next
            if nxt is not None and ((limit is not None and here >= limit) or (c.pages.max and read >= c.pages.max)):
                if not (limit is not None and here >= limit):
                    self.truncated = f"stopped at pages.max ({c.pages.max}); rows on later pages were not read"
                    self.warnings.append(f"source {c.name}: {self.truncated}; nothing is deleted this run")
                else:
                    self.truncated = "--limit-pages"
                yield self._batch(lp, nxt, fetched, read)
                return
            yield self._batch(lp, nxt, fetched, read)
            if nxt is None:
                return

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._loop.submit(self._close()).result(timeout=30)
        except Exception:  # a browser already gone (killed, crashed) is closed enough
            pass
        self._loop.stop()
        self._loop = None

    # ---- browser -------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._loop is None:
            self._loop = _LoopThread(f"web-{self.config.name}")
            try:
                self._loop.run(self._start())
            except BaseException:
                self.close()
                raise

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        c = self.config
        b = c.browser
        found = find_browser(b.executable, source=c.name)
        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=found.path, headless=b.headless,
                timeout=max(b.timeout, LAUNCH_TIMEOUT) * 1000,
                args=[f"{OWNER_SWITCH}={os.getpid()}", "--disable-gpu", "--no-first-run",
                      "--disable-dev-shm-usage", *b.args])
        except Exception as e:
            raise FetchError(f"source {c.name}: could not start {found.path} ({found.how}): {_first_line(e)}",
                             error_type="config", retryable=False) from None
        self._pool = asyncio.Queue()
        for _ in range(c.concurrency):
            self._pool.put_nowait(await self._new_page())
        if not c.paged and c.next:
            self._walker = await self._new_page()

    async def _new_page(self) -> Any:
        b = self.config.browser
        opts: dict[str, Any] = {"user_agent": b.user_agent} if b.user_agent else {}
        if (creds := self.config.http_credentials()) is not None:  # the url's userinfo, for its origin only
            opts["http_credentials"] = creds
        context = await self._browser.new_context(**opts)
        context.set_default_timeout(b.timeout * 1000)
        if b.block:
            blocked = set(b.block)

            async def route(r: Any) -> None:
                if r.request.resource_type in blocked:
                    await r.abort()
                else:
                    await r.continue_()
            await context.route("**/*", route)
        return await context.new_page()

    async def _close(self) -> None:
        try:
            if self._browser is not None:
                await self._browser.close()
        finally:
            self._browser = None
            if self._pw is not None:
                await self._pw.stop()
                self._pw = None

    # ---- walking the list ----------------------------------------------------------------------------

    def _walk(self, pos: _Position, read: int) -> Iterator[_ListPage]:
        assert self._loop is not None
        c = self.config
        if c.paged:  # independent URLs: keep `concurrency` pages in flight, hand them over in order
            window: deque[Future[Any]] = deque()
            n = pos.page
            stops = [pos.page + c.pages.max - read] if c.pages.max is not None else []
            if self.ctx.limit_pages is not None:  # --limit-pages: fetch no page beyond them, not even ahead
                stops.append(pos.page + self.ctx.limit_pages)
            stop_at = min(stops) if stops else None
            try:
                while True:
                    while len(window) < c.concurrency and (stop_at is None or n < stop_at):
                        p = _Position(n, c.page_url(n))
                        window.append(self._loop.submit(self._list_page(self._pooled, p, self._paged_next(p))))
                        n += 1
                    if not window:
                        return
                    lp = self._result(window.popleft())
                    yield lp
                    if lp.end:
                        return
            finally:
                for f in window:
                    f.cancel()
        else:
            current: _Position | None = pos
            first = True
            while current is not None:
                lp = self._result(self._loop.submit(self._click_page(current, reopen=first)))
                first = False
                yield lp
                current = lp.next

    def _paged_next(self, p: _Position) -> _Position:
        return _Position(p.page + 1, self.config.page_url(p.page + 1))

    def _result(self, fut: Future[Any]) -> Any:
        while True:
            if self.ctx.cancel is not None and self.ctx.cancel.is_set():
                fut.cancel()
                raise RunCancelled("cancelled")
            try:
                return fut.result(timeout=0.25)
            except TimeoutError:
                continue

    async def _pooled(self, coro_fn: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        assert self._pool is not None
        page = await self._pool.get()
        try:
            return await coro_fn(page)
        finally:
            self._pool.put_nowait(page)

    async def _list_page(self, use: Callable[..., Any], pos: _Position, nxt: _Position | None) -> _ListPage:
        c = self.config
        got = await use(lambda page: self._attempts(pos.url, lambda: self._load(page, pos.url, pos.page)))
        if got is _END:
            return _ListPage(pos, pos.url, end=True)
        url, raw = got
        lp = _ListPage(pos, url, next=nxt)
        await self._rows(lp, raw)
        if c.detail is not None:
            await self._details(lp)
        return lp

    async def _click_page(self, pos: _Position, reopen: bool) -> _ListPage:
        """Click-paginated lists: the walker page stays on the list; details use the pool meanwhile."""
        c = self.config
        page = self._walker if c.next else None
        if page is None:  # no pagination at all: one page
            pool = self._pool
            assert pool is not None
            page = await pool.get()
            try:
                got = await self._attempts(pos.url, lambda: self._load(page, pos.url, pos.page))
            finally:
                pool.put_nowait(page)
        elif reopen:
            got = await self._attempts(pos.url, lambda: self._reach(page, pos))
        else:
            got = await self._attempts(pos.url, lambda: self._extract(page, pos.url))
        if got is _END:
            return _ListPage(pos, pos.url, end=True)
        url, raw = got
        lp = _ListPage(pos, url)
        await self._rows(lp, raw)
        detail = asyncio.ensure_future(self._details(lp)) if c.detail is not None else None
        try:
            if c.next:
                lp.next = await self._next(page, pos, url)
        finally:
            if detail is not None:
                await detail
        return lp

    async def _next(self, page: Any, pos: _Position, url: str) -> _Position | None:
        """Click `next` and wait for other rows; retried by reopening the next page's position."""
        c = self.config
        assert c.next is not None
        if await page.query_selector(c.next) is None:
            return None
        nxt = _Position(pos.page + 1, pos.url, pos.clicks + 1)
        try:
            await self._click(page)
        except _Transient:  # the click's render failed: reach the page afresh, with retries
            await self._attempts(pos.url, lambda: self._reach(page, nxt))
        if page.url != url and page.url != pos.url:
            nxt = _Position(pos.page + 1, page.url, 0)  # addressable: a resume opens it directly
        return nxt

    async def _reach(self, page: Any, pos: _Position) -> Any:
        got = await self._load(page, pos.url, pos.page)
        for _ in range(pos.clicks):
            if got is _END:
                return got
            await self._click(page)
            got = True
        return await self._extract(page, page.url) if got is not _END else got

    async def _click(self, page: Any) -> None:
        c = self.config
        assert c.next is not None
        before = await self._signature(page)
        await self._throttle(page.url)
        try:
            await page.click(c.next, timeout=c.browser.timeout * 1000)
        except Exception as e:
            raise _Transient(f"clicking {c.next!r} on {page.url} failed: {_first_line(e)}", "timeout") from None
        deadline = time.monotonic() + c.browser.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            sig = await self._signature(page)
            if sig is not None and sig != before:
                await self._wait_rendered(page, page.url)
                return
        raise _Transient(f"{page.url}: the rows did not change within {c.browser.timeout:g}s of clicking "
                         f"{c.next!r}", "timeout")

    async def _signature(self, page: Any) -> str | None:
        try:
            return await page.evaluate(_SIGNATURE, self.config.rows)
        except Exception:  # navigating: the old document is gone, the new one not there yet
            return None

    # ---- one page ------------------------------------------------------------------------------------

    async def _load(self, page: Any, url: str, n: int | None) -> Any:
        """Open a list page and read its rows: (final URL, raw rows), or _END."""
        c = self.config
        status = await self._goto(page, url)
        if status == 404 and n is not None and n > c.pages.start:
            return _END
        end = await self._wait_rendered(page, url)
        if end:
            return _END
        return await self._extract(page, url)

    async def _goto(self, page: Any, url: str) -> int | None:
        c = self.config
        await self._throttle(url)
        self.attempts += 1
        try:
            resp = await page.goto(url, wait_until="domcontentloaded", timeout=c.browser.timeout * 1000)
        except Exception as e:
            kind = "timeout" if "Timeout" in type(e).__name__ else "network"
            raise _Transient(f"{url}: navigation failed: {_first_line(e)}", kind) from None
        status = resp.status if resp is not None else None
        if status is not None and status in c.retry.retry_on:
            raise _Transient(f"{url}: HTTP {status}", "http", status)
        if status is not None and status >= 400 and status != 404:
            body = ""
            try:  # masked before it is cut: a secret the server echoes must not survive as a fragment
                body = self.ctx.redact(await resp.text())[:200]
            except Exception:
                pass
            raise FetchError(f"{url}: HTTP {status}: {body!r}", error_type="auth" if status in (401, 403) else "http",
                             status=status, url=url, retryable=False)
        return status

    async def _wait_rendered(self, page: Any, url: str) -> bool:
        """Wait for `wait_for` (or the rows); True when the `end` selector came instead (no more rows)."""
        c = self.config
        sel = c.wait_for or c.rows
        either = f"{sel}, {c.pages.end}" if c.pages.end else sel
        try:
            await page.wait_for_selector(either, state="attached", timeout=c.browser.timeout * 1000)
        except Exception as e:
            if "Timeout" not in type(e).__name__:
                raise _Transient(f"{url}: {_first_line(e)}", "network") from None
            await self._snapshot(page, url)
            raise _Transient(f"{url}: {sel!r} did not appear within {c.browser.timeout:g}s", "timeout") from None
        if c.pages.end and await page.query_selector(c.pages.end) is not None:
            return await page.query_selector(c.rows) is None
        return False

    async def _extract(self, page: Any, url: str) -> tuple[str, list[dict[str, Any]]]:
        specs = [[name, f.selector, f.attr] for name, f in self.config.list_fields.items()]
        try:
            raw = await page.eval_on_selector_all(self.config.rows, _EXTRACT, [specs, list(ABSOLUTE_ATTRS)])
        except Exception as e:
            raise _Transient(f"{url}: reading rows failed: {_first_line(e)}", "network") from None
        return page.url, raw

    async def _attempts(self, url: str, attempt: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Retries with backoff and jitter; the host's breaker counts every failed try."""
        from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type, stop_after_attempt

        r = self.config.retry

        def wait(state: RetryCallState) -> float:
            return backoff(state.attempt_number, r.initial, r.max)

        breaker = self._breaker(url)
        last: _Transient | None = None
        try:
            async for tr in AsyncRetrying(retry=retry_if_exception_type(_Transient),
                                          stop=stop_after_attempt(r.attempts),
                                          wait=wait,
                                          before_sleep=self._record_wait, reraise=False):
                with tr:
                    breaker.before()
                    try:
                        out = await attempt()
                    except _Transient as e:
                        last = e
                        breaker.failure(self.ctx.redact(str(e)))  # the breaker row keeps it
                        raise
                    breaker.success()
                    return out
        except RetryError:
            assert last is not None
            raise self._failed(last, url) from None
        raise AssertionError("unreachable")

    def _record_wait(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        status = getattr(exc, "status", None)
        why = f"retry after HTTP {status}" if status else f"retry after {getattr(exc, 'error_type', 'error')}"
        with self._lock:
            self.waits.append(Wait(self.ctx.redact(str(exc)[:200]), why, wait))

    def _failed(self, e: _Transient, url: str) -> FetchError:
        shots = self._snapshots.pop(url, None)
        where = f"; screenshot {shots[0]}, html {shots[1]}" if shots else ""
        tries = self.config.retry.attempts
        return FetchError(f"{e} (after {tries} tr{'y' if tries == 1 else 'ies'}){where}", error_type=e.error_type,
                          status=e.status, url=url, retryable=True)

    async def _rows(self, lp: _ListPage, raw: list[dict[str, Any]]) -> None:
        for i, rec in enumerate(raw, 1):
            bad = self._apply_regex(self.config.list_fields, rec)
            if bad is not None:
                lp.problems.append(RecordProblem(bad[1], "validation", line=i, file=lp.url, column=bad[0],
                                                 payload=rec))
                continue
            rec["_row"] = i
            lp.records.append(rec)

    @staticmethod
    def _apply_regex(fields: dict[str, WebField], rec: dict[str, Any]) -> tuple[str, str] | None:
        for name, f in fields.items():
            v = rec.get(name)
            if f.regex is None or v in (None, ""):
                continue
            m = re.search(f.regex, v)
            if m is None:
                return name, f"field {name}: {v!r} does not match regex {f.regex!r}"
            rec[name] = m.group(1) if m.groups() else m.group(0)
        return None

    # ---- detail pages ---------------------------------------------------------------------------------

    async def _details(self, lp: _ListPage) -> None:
        d = self.config.detail
        assert d is not None
        want = self._want
        todo = [r for r in lp.records if r.get(d.url_field) and (want is None or want(lp.url, r["_row"]))]

        async def follow(r: dict[str, Any]) -> dict[str, Any]:
            self.check_detail_link(str(r[d.url_field]))  # before any page is opened on it
            got: dict[str, Any] = await self._pooled(partial(self._detail, url=str(r[d.url_field])))
            return got

        results = await asyncio.gather(*(follow(r) for r in todo), return_exceptions=True)
        failed: set[int] = set()
        for r, res in zip(todo, results, strict=True):
            if isinstance(res, CircuitOpen):
                raise res
            if isinstance(res, BaseException):
                if not isinstance(res, FetchError):
                    raise res
                failed.add(id(r))
                lp.problems.append(RecordProblem(f"detail page of row {r['_row']}: {res}", res.error_type,
                                                 line=r["_row"], file=lp.url, payload=r, retryable=res.retryable))
                continue
            r.update(res)
        if failed:
            lp.records = [r for r in lp.records if id(r) not in failed]

    def check_detail_link(self, url: str) -> None:
        """Detail links are followed on http(s) only, and only on the list page's origin or `allow_origins`:
        a file:// (or javascript:, data:...) link is an item error and its content never read."""
        c = self.config
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"the detail link {url[:200]!r} is not http(s) ({scheme or 'no scheme'}): not followed",
                             error_type="validation", url=url[:200], retryable=False)
        own = origin_of(c.page_url(c.pages.start) if c.paged else c.plain_url)
        there = origin_of(url)
        if there != own and there not in c.allow_origins:
            raise FetchError(f"the detail link {url[:200]} leads from {own} to another origin, {there}: not "
                             f"followed; if that origin is trusted, add {there!r} to the source's allow_origins",
                             error_type="validation", url=url[:200], retryable=False)

    async def _detail(self, page: Any, url: str) -> dict[str, Any]:
        d = self.config.detail
        assert d is not None
        specs = [[name, f.selector, f.attr] for name, f in d.fields.items()]

        async def attempt() -> dict[str, Any]:
            await self._goto(page, url)
            if d.wait_for:
                try:
                    await page.wait_for_selector(d.wait_for, state="attached",
                                                 timeout=self.config.browser.timeout * 1000)
                except Exception as e:
                    if "Timeout" not in type(e).__name__:
                        raise _Transient(f"{url}: {_first_line(e)}", "network") from None
                    await self._snapshot(page, url)
                    raise _Transient(f"{url}: {d.wait_for!r} did not appear within "
                                     f"{self.config.browser.timeout:g}s", "timeout") from None
            try:
                got = await page.evaluate(f"([specs, absolute]) => ({_EXTRACT})([document.documentElement], "
                                          "[specs, absolute])[0]", [specs, list(ABSOLUTE_ATTRS)])
            except Exception as e:
                raise _Transient(f"{url}: reading fields failed: {_first_line(e)}", "network") from None
            bad = self._apply_regex(d.fields, got)
            if bad is not None:
                raise FetchError(f"{url}: {bad[1]}", error_type="validation", url=url, retryable=False)
            return got

        return await self._attempts(url, attempt)

    # ---- politeness and evidence -----------------------------------------------------------------------

    async def _throttle(self, url: str) -> None:
        lim = self.config.rate_limit
        if lim is None:
            return
        host = urlsplit(strip_userinfo(url)).netloc
        waited = await asyncio.to_thread(throttle, self.config.name, host, lim, self.ctx.cancel)
        if waited > 0.001:
            with self._lock:
                self.waits.append(Wait(host, "rate limit", waited))

    def _breaker(self, url: str) -> HostBreaker:
        host = urlsplit(strip_userinfo(url)).netloc or "file"  # the breaker key: stored, shown
        with self._lock:
            b = self._breakers.get(host)
            if b is None:
                b = self._breakers[host] = host_breaker(host, self.config.circuit_breaker, self.config.name,
                                                       self.ctx.store)
            return b

    async def _snapshot(self, page: Any, url: str) -> None:
        """A screenshot and the DOM as it was when the selector did not come: what a person needs to fix it."""
        folder = artifacts_dir(self.ctx.store, self.config.name)
        stem = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + hashlib.sha1(url.encode()).hexdigest()[:8]
        png, html = folder / f"{stem}.png", folder / f"{stem}.html"
        try:
            private_dir(folder)  # owner-only: a page may show what only its logged-in user should see
            shot = await page.screenshot(full_page=True, timeout=10_000)  # bytes: written here, 0600
            with open_private(png, "wb") as fb:
                fb.write(shot)
            with open_private(html, "w", encoding="utf-8") as fh:  # a page may echo a credential: masked
                fh.write(self.ctx.redact(await page.content()))
        except Exception:  # evidence is best effort: the error itself must still be reported
            return
        old = self._snapshots.get(url)
        self._snapshots[url] = (str(png), str(html))
        if old is not None and old != self._snapshots[url]:  # keep the last try's: the one the error names
            for f in old:
                Path(f).unlink(missing_ok=True)

    # ---- batches -----------------------------------------------------------------------------------------

    def _batch(self, lp: _ListPage, nxt: _Position | None, fetched: int, read: int) -> Batch:
        ck = {"page": None, "fetched": fetched, "read": read} if nxt is None else \
            {**nxt.as_dict(), "fetched": fetched, "read": read}
        want = self._want
        if want is not None:  # a retry: only the rows (and problems) it asked for
            lp.records = [r for r in lp.records if want(lp.url, r["_row"])]
            lp.problems = [p for p in lp.problems if want(p.file or lp.url, p.line)]
        lines = [r.pop("_row") for r in lp.records]  # the row's index on its page: what item errors name
        return Batch(records=lp.records, mapper=self.mapper, lines=lines, file=lp.url, problems=lp.problems,
                     checkpoint=ck, done=read, total=None, detail=f"page {lp.pos.page}, {fetched} rows")


def _rows_digest(records: list[dict[str, Any]]) -> bytes:
    """What identifies a list page's content (its rows, without their position), as a 16-byte digest."""
    import json

    text = json.dumps([{k: v for k, v in r.items() if k != "_row"} for r in records], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def artifacts_dir(store: Any, source: str) -> Path:
    """Beside a SQLite store's file (a demo or test directory keeps its own), else in the user data dir."""
    from syncdash.common.dialect import sqlite_path

    path = sqlite_path(store.url) if store is not None else None
    if path is not None:
        return path.parent / "artifacts" / source
    import platformdirs

    return Path(platformdirs.user_data_dir("syncdash")) / "artifacts" / source


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
