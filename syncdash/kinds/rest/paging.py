"""Pagination shapes (after dlt's BasePaginator): where the next page is, as a JSON-able state.

The state is the stream's checkpoint: committed with the page it follows, so a resumed run asks for
exactly the next page. Page and offset states can also be computed ahead, which is what lets pages
be fetched in parallel once the total is known.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import httpx

from syncdash.kinds.rest.config import (
    CursorPagination,
    LinkHeaderPagination,
    NextUrlPagination,
    NoPagination,
    OffsetPagination,
    PagePagination,
    Pagination,
)

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')
_REL = re.compile(r'rel\s*=\s*"?([^";]+)"?', re.I)


class PathNotFound(LookupError):
    pass


def get_path(obj: Any, path: str | None) -> Any:
    """obj at a dotted path ("data.items", "tags.0"); PathNotFound names the first missing step."""
    if not path:
        return obj
    cur = obj
    for step in path.split("."):
        if isinstance(cur, dict):
            if step not in cur:
                raise PathNotFound(step)
            cur = cur[step]
        elif isinstance(cur, list) and (step.isdigit() or (step.startswith("-") and step[1:].isdigit())):
            try:
                cur = cur[int(step)]
            except IndexError:
                raise PathNotFound(step) from None
        else:
            raise PathNotFound(step)
    return cur


def next_link(headers: httpx.Headers) -> str | None:
    """The rel="next" target of an RFC 8288 Link header, if any."""
    for value in headers.get_list("link"):
        for m in _LINK.finditer(value):
            rels = _REL.search(m.group(2) or "")
            if rels and "next" in rels.group(1).lower().split():
                return m.group(1)
    return None


class Pager:
    """Turns a pagination config into requests and advances its state from each response."""

    def __init__(self, p: Pagination | None, url: str, params: dict[str, Any]) -> None:
        self.p = p or NoPagination(type="none")
        self.url = url
        self.params = params

    @property
    def parallel(self) -> bool:
        return isinstance(self.p, PagePagination | OffsetPagination)

    @property
    def page_size(self) -> int | None:
        if isinstance(self.p, PagePagination):
            return self.p.size
        if isinstance(self.p, OffsetPagination):
            return self.p.limit
        return None

    def start(self) -> dict[str, Any]:
        p = self.p
        if isinstance(p, PagePagination):
            return {"page": p.start, "n": 0}
        if isinstance(p, OffsetPagination):
            return {"offset": p.start, "n": 0}
        if isinstance(p, CursorPagination):
            return {"cursor": None, "n": 0}
        if isinstance(p, NextUrlPagination | LinkHeaderPagination):
            return {"url": None, "n": 0}
        return {"n": 0}

    def ahead(self, state: dict[str, Any], i: int) -> dict[str, Any]:
        """The state i pages after `state` (page/offset only)."""
        if isinstance(self.p, PagePagination):
            return {"page": state["page"] + i, "n": state["n"] + i}
        assert isinstance(self.p, OffsetPagination)
        return {"offset": state["offset"] + i * self.p.limit, "n": state["n"] + i}

    def request(self, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        p, params = self.p, dict(self.params)
        if isinstance(p, PagePagination):
            params[p.page_param] = state["page"]
            if p.size_param:
                params[p.size_param] = p.size
        elif isinstance(p, OffsetPagination):
            params[p.offset_param] = state["offset"]
            params[p.limit_param] = p.limit
        elif isinstance(p, CursorPagination):
            if state.get("cursor") is not None:
                params[p.cursor_param] = state["cursor"]
        elif isinstance(p, NextUrlPagination | LinkHeaderPagination) and state.get("url"):
            return state["url"], {}  # the server's link carries its own query
        return self.url, params

    def advance(self, state: dict[str, Any], body: Any, headers: httpx.Headers, url: str,
                n_records: int) -> dict[str, Any] | None:
        """The state after this page, or None when the stream has ended."""
        p = self.p
        n = state["n"] + 1
        if n_records == 0 or isinstance(p, NoPagination) or (p.max_pages is not None and n >= p.max_pages):
            return None
        if isinstance(p, PagePagination):
            return {"page": state["page"] + 1, "n": n}
        if isinstance(p, OffsetPagination):
            return {"offset": state["offset"] + n_records, "n": n}
        if isinstance(p, CursorPagination):
            try:
                cur = get_path(body, p.cursor_path)
            except PathNotFound:
                cur = None
            return None if cur in (None, "") else {"cursor": cur, "n": n}
        if isinstance(p, NextUrlPagination):
            try:
                nxt = get_path(body, p.next_path)
            except PathNotFound:
                nxt = None
        else:
            nxt = next_link(headers)
        if not nxt or not isinstance(nxt, str):
            return None
        return {"url": urljoin(url, nxt), "n": n}
