"""`syncdash search "query" [--source NAME] [--json] [--limit N]`: full-text search over the tables of
sources that declare `search:` (see targets/search.py), best first, matched words highlighted."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from syncdash.cli.process import EXIT_OK
from syncdash.errors import UsageError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("search", parents=[common], help="full-text search of the synced data (`search:` fields)")
    s.add_argument("query", help="words to find (every word must match; the last letters may be left off)")
    s.add_argument("--source", metavar="NAME", help="only this source's table")
    s.add_argument("--limit", type=int, default=20, help="at most this many hits (default 20, max 1000)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from syncdash.cli import commands, render
    from syncdash.targets import open as target_db
    from syncdash.targets.search import MAX_LIMIT, search_project, searchable_sources

    cfg = commands.load_config(args.config)
    render.set_secrets(cfg.secrets)
    if args.limit < 1 or args.limit > MAX_LIMIT:
        raise UsageError(f"--limit {args.limit}: give 1 to {MAX_LIMIT}")
    if args.source is not None:
        src = cfg.source(args.source)
        if src is None:
            raise UsageError(f"no source {args.source!r}; sources: {', '.join(s.name for s in cfg.source_list)}")
        if not getattr(src, "search", None):
            raise UsageError(f"source {args.source!r} has no `search:` fields to search")
    elif not searchable_sources(cfg):
        raise UsageError("no source declares `search:` fields; add e.g. `search: [title, artist]` to one")
    store = commands.open_store(cfg.database)
    hits = search_project(lambda s: target_db.connect(store, target_db.target_url(cfg, s)), cfg, args.query,
                          source=args.source, limit=args.limit)
    if args.json:
        sys.stdout.write(render.redact(json.dumps([h.as_dict() for h in hits], default=str, ensure_ascii=False))
                         + "\n")
        return EXIT_OK
    console = render.out
    if not hits:
        console.print(f"no matches for {render.esc(args.query)}")
        return EXIT_OK
    for h in hits:
        key = ", ".join(f"{k}={v}" for k, v in h.key.items())
        console.print(f"[bold]{render.esc(h.source)}[/] {render.esc(key)}  [dim]{h.score:.3g}[/]")
        for col in h.fields:
            text = h.marked(col, "\x00", "\x01")
            shown = render.esc(text).replace("\x00", "[reverse]").replace("\x01", "[/reverse]")
            console.print(f"  {render.esc(col)}: {shown}", highlight=False)
    return EXIT_OK
