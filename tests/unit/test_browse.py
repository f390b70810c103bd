"""The browser's paging and filters (syncdash/targets/browse.py) on a real SQLite file, PostgreSQL and
MariaDB: every live row exactly once across keyset pages, in the order asked for (NULL first ascending,
last descending, ties by key), filters equal to the same filter applied in Python, clear errors."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import SqliteFileDb, server_db

from syncdash.common.dialect import Conn, normalize_url
from syncdash.errors import UsageError
from syncdash.targets import browse
from syncdash.targets import open as target_db

CITIES = ["lyon", "nice", "paris", "lille", None]
N = 237


def rows() -> list[tuple[Any, ...]]:
    rnd = random.Random(17)
    out = []
    for i in range(1, N + 1):
        deleted = "2025-01-01 00:00:00" if i % 19 == 0 else None
        out.append((i, f"name{i:03d}", rnd.choice(CITIES), float(rnd.randint(0, 300)), deleted))
    return out


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conn]:
    db: Any = SqliteFileDb(tmp_path / "target.db") if request.param == "sqlite" else server_db(request.param)
    c = target_db.connect(SimpleNamespace(url="sqlite:///store-is-elsewhere.db"), normalize_url(db.url))
    try:
        c.execute('CREATE TABLE "people" ("id" INTEGER PRIMARY KEY, "name" VARCHAR(40), "city" VARCHAR(20), '
                  '"total" DOUBLE PRECISION, "_synced_at" VARCHAR(40), "_run_id" INTEGER, "_hash" BIGINT, '
                  '"_deleted_at" VARCHAR(40))')
        c.executemany('INSERT INTO "people" ("id", "name", "city", "total", "_deleted_at", "_run_id") '
                      "VALUES (?, ?, ?, ?, ?, 1)", rows())
        yield c
    finally:
        c.close()
        target_db.dispose()
        db.drop()


def live() -> list[tuple[Any, ...]]:
    return [r[:4] for r in rows() if r[4] is None]


def walk(c: Conn, **kw: Any) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    after = None
    for _ in range(100):
        p = browse.page(c, "people", ["id"], after=after, limit=20, **kw)
        assert p.columns == ["id", "name", "city", "total"]
        assert len(p.rows) <= 20
        seen += [tuple(float(v) if i == 3 else v for i, v in enumerate(r)) for r in p.rows]
        if p.cursor is None:
            return seen
        after = p.cursor
    raise AssertionError("paging never ended")


def test_pages_by_key_list_every_live_row_once(conn: Conn) -> None:
    assert walk(conn) == sorted(live())
    assert [r[0] for r in walk(conn, descending=True)] == sorted((r[0] for r in live()), reverse=True)


@pytest.mark.parametrize("descending", [False, True])
def test_sorted_by_a_nullable_column_with_ties(conn: Conn, descending: bool) -> None:
    def order(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (r[2] is not None, r[2] or "", r[0])

    expected = sorted(live(), key=order, reverse=descending)
    assert walk(conn, sort="city", descending=descending) == expected
    by_total = sorted(live(), key=lambda r: (r[3], r[0]), reverse=descending)
    assert walk(conn, sort="total", descending=descending) == by_total


def test_filters_match_the_same_filter_in_python(conn: Conn) -> None:
    cols = ["id", "name", "city", "total"]
    f = browse.parse_filter("city:LY total>100", cols)
    assert walk(conn, filters=f) == [r for r in live() if r[2] == "lyon" and r[3] > 100]
    f = browse.parse_filter("total<=50 name0", cols)
    assert walk(conn, filters=f, sort="total") == sorted(
        (r for r in live() if r[3] <= 50 and r[0] < 100), key=lambda r: (r[3], r[0]))
    assert walk(conn, filters=browse.parse_filter("id=38", cols)) == []  # soft-deleted: not listed
    assert walk(conn, filters=browse.parse_filter("id=37", cols)) == [r for r in live() if r[0] == 37]


def test_bad_filters_and_sorts_name_the_column(conn: Conn) -> None:
    cols = ["id", "name", "city", "total"]
    with pytest.raises(UsageError, match=r"no column 'town'.*columns: id, name, city, total"):
        browse.parse_filter("town:lyon", cols)
    with pytest.raises(UsageError, match="a value is missing"):
        browse.parse_filter("total>", cols)
    with pytest.raises(UsageError, match="sort: no column 'zip'"):
        browse.page(conn, "people", ["id"], sort="zip")
