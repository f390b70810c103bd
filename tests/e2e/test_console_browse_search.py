"""`/` in the console's browser (issue 17): on a table whose source declares `search:`, words search the
full-text index (best first, the same order as `syncdash search`, matched words highlighted, markup in the
data shown as typed) and `column:value` / `column>value` still filter; on a table without `search:` a word
stays a plain "any column contains it" filter. A real SQLite project synced by the real CLI, the real app
through Pilot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from conftest import Project
from console_fixtures import wait_for
from rich.text import Text
from test_console import make_app

from syncdash.tui.screens.browse import MATCH_STYLE

CONFIG = """\
sources:
  - name: songs
    kind: csv
    path: data/songs.csv
    table: songs
    primary_key: [id]
    search: [title, artist]
    fields:
      id: {type: int}
      title: title
      artist: artist
      year: {type: int}
  - name: plays
    kind: csv
    path: data/plays.csv
    table: plays
    primary_key: [id]
    fields:
      id: {type: int}
      title: title
"""

# id 4's title is the shortest holding `kalvor`, so relevance puts it before the lower ids; 2 and 6 carry
# markup-like text; 5 has `kalvorish` (a prefix match); 3 mentions `alvor` inside a word (no word match)
SONGS = """\
id,title,artist,year
1,The long road back home to the kalvor county fair,nobody,1961
2,[b]Kalvor[/b] nights,someone,1972
3,Salvor,kalvor trio,1983
4,Kalvor,other,1994
5,Kalvorish dreams,x,2005
6,Quiet,[red]Mendix[/red],2010
7,Nothing here,nobody,2011
"""


def cells(app: Any) -> list[list[Any]]:
    t = app.screen.query_one("#browse-rows")
    return [list(t.get_row_at(i)) for i in range(t.row_count)]


def title(app: Any) -> str:
    return str(app.screen.query_one("#browse-title").render())


def test_slash_searches_the_index_ranked_and_highlighted_and_filters_still_apply(project: Project) -> None:
    project.config(CONFIG)
    project.write("data/songs.csv", SONGS)
    project.write("data/plays.csv", "id,title\n1,kalvorish\n2,Salvor\n3,none\n")
    assert project.run_json("--all", expect=0)
    cli_order = [h["key"]["id"] for h in json.loads(project.cli("search", "kalvor", "--json").stdout)]
    assert sorted(cli_order) == [1, 2, 3, 4, 5] and cli_order[0] != 1

    async def scenario() -> None:
        app = make_app(project, host=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, timeout=30, what="the dashboard")
            await pilot.press("b", "enter")  # songs, the first table
            await wait_for(pilot, lambda: len(cells(app)) == 7, timeout=30, what="songs, page 1")
            await pilot.press("slash", *"kalvor", "enter")
            await wait_for(pilot, lambda: "search kalvor" in title(app), timeout=30, what="the search results")
            got = cells(app)
            assert [int(str(r[0])) for r in got] == cli_order  # ranked as `syncdash search` ranks them
            assert "by relevance" in title(app) and "5 match(es)" in title(app)
            by_id = {int(str(r[0])): r for r in got}
            # highlighted: the matched word's characters carry the style, the rest of the cell does not
            t2 = by_id[2][1]
            assert isinstance(t2, Text) and t2.plain == "[b]Kalvor[/b] nights"  # markup shown as typed
            styled = [(s.start, s.end) for s in t2.spans if str(s.style) == MATCH_STYLE]
            assert styled == [(3, 9)] and t2.plain[3:9] == "Kalvor"
            t5 = by_id[5][1]
            assert [(s.start, s.end) for s in t5.spans] == [(0, 9)]  # the whole word `Kalvorish` (a prefix)
            assert not by_id[3][1].spans and [(s.start, s.end) for s in by_id[3][2].spans] == [(0, 6)]
            # a filter narrows the search; the rows stay ranked
            await pilot.press("slash", "ctrl+u", *"kalvor year>1980", "enter")
            await wait_for(pilot, lambda: "year>1980" in title(app), timeout=30, what="search + filter")
            await wait_for(pilot, lambda: [int(str(r[0])) for r in cells(app)] == [i for i in cli_order if i > 2],
                           timeout=30, what="ranked matches after 1980")
            # `s` does not silently re-sort search results
            await pilot.press("s")
            await pilot.pause(0.2)
            assert [int(str(r[0])) for r in cells(app)] == [i for i in cli_order if i > 2]
            # filters alone page the table as before (by key)
            await pilot.press("slash", "ctrl+u", *"year>2000", "enter")
            await wait_for(pilot, lambda: [str(r[0]) for r in cells(app)] == ["5", "6", "7"], timeout=30,
                           what="a plain filter")
            assert "search" not in title(app)
            # a table without `search:`: a word is a substring filter over every column (`alvor` in Salvor)
            await pilot.press("escape", "l")
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: "plays" in title(app) and len(cells(app)) == 3, timeout=30,
                           what="plays")
            await pilot.press("slash", *"alvor", "enter")
            await wait_for(pilot, lambda: [str(r[0]) for r in cells(app)] == ["1", "2"], timeout=30,
                           what="the plain word filter")
            assert "search" not in title(app) and "filter alvor" in title(app)

    asyncio.run(scenario())


def test_row_history_names_the_source_item_only_where_the_store_recorded_one(tmp_path: Path) -> None:
    """Written rows have no recorded source item (the screen says so); row 2210 of the fixture failed
    validation at data/customers.csv:2211 in run 8, so its screen names that item."""
    from console_fixtures import dashboard_ready, rows
    from console_fixtures import make_app as make_fixture_app

    async def scenario() -> None:
        app = make_fixture_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("b", "enter")
            await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 50, what="customers")
            for key, want in (("1042", "not recorded for a written row"),
                              ("2210", "data/customers.csv:2211 (run 8, validation")):
                await pilot.press("slash", "ctrl+u", *f"id={key}", "enter")
                await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 1, what=f"row {key}")
                await pilot.press("enter")
                await wait_for(pilot, lambda: type(app.screen).__name__ == "RowScreen"
                               and "source item" in str(app.screen.query_one("#row-values").render()),
                               what=f"row {key}'s source item")
                assert want in str(app.screen.query_one("#row-values").render())
                await pilot.press("escape")
                await wait_for(pilot, lambda: type(app.screen).__name__ == "BrowseScreen", what="browse")

    asyncio.run(scenario())
