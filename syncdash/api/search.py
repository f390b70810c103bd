"""GET /v1/search?q=&source=&limit=: full-text search of the synced data (targets/search.py), for any token
(a GET: the read-only token may use it). The endpoint and its parameters are declared in schemas.ENDPOINTS
with the others; app.Handler finds this view by the endpoint's handler name."""

from __future__ import annotations

from typing import Any

from syncdash.api.schemas import ApiError
from syncdash.targets import open as target_db
from syncdash.targets.search import search_project, searchable_sources


def search(api: Any, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    if "q" not in query:
        raise ApiError(400, "q is required: the words to search for")
    source = query.get("source")
    if source is not None:
        src = api.config.source(source)
        if src is None:
            raise ApiError(404, f"no source {source!r}")
        if not getattr(src, "search", None):
            raise ApiError(400, f"source {source!r} has no `search:` fields")
    elif not searchable_sources(api.config):
        raise ApiError(400, "no source declares `search:` fields")
    hits = search_project(lambda s: target_db.connect(api.store, target_db.target_url(api.config, s)), api.config,
                          query["q"], source=source, limit=query.get("limit", 20))
    return 200, {"hits": [h.as_dict() for h in hits]}
