"""Issue 18: the CSV reader splits plain chunks with str.split and hands the rest of the file to csv.reader at
the first quote; a re-sync ships records to the writer packed. Both must read exactly what csv.reader reads:
rows, blank lines, ragged rows and their line numbers, a quoted line break past the first chunk, a last line
without a line break, and the rows a re-sync finds changed on either side of the switch."""

from __future__ import annotations

import csv
import io

from conftest import Project

SOURCE = """\
sources:
  - name: items
    kind: csv
    path: data/items.csv
    table: items
    primary_key: [id]
    batch_size: 1000
    fields:
      id: {type: int}
      name: name
      qty: {type: int}
"""


def _text(changed: bool) -> str:
    """~1.3 MB, CRLF: several of the reader's 256K-character chunks, a quoted value with a line break, then more."""
    out = ["id,name,qty\r\n"]
    for i in range(1, 12001):
        if i == 5000:
            out.append("\r\n")  # a blank line: skipped, not a row
        name = f"name {i} " + "x" * 90
        if changed and i in (10, 11900):
            name += " changed"
        if i == 11500:
            out.append(f'{i},"two\r\nlines",{i}\r\n')
        elif i == 11600:
            out.append(f"{i},ragged\r\n")
        else:
            out.append(f"{i},{name},{i}" + ("\r\n" if i < 12000 else ""))  # no line break at the end
    return "".join(out)


def _expected(text: str) -> tuple[list[tuple[object, ...]], list[int]]:
    """csv.reader's reading of the text: the rows and the start lines of the ragged records."""
    rows, ragged = [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    line = reader.line_num
    for rec in reader:
        start, line = line + 1, reader.line_num
        if len(rec) == 3:
            rows.append((int(rec[0]), rec[1], int(rec[2])))
        elif rec:
            ragged.append(start)
    return rows, ragged


def test_split_reading_matches_csv_reader_across_the_switch(project: Project) -> None:
    path = project.root / "data" / "items.csv"
    path.parent.mkdir()
    project.config(SOURCE)
    first = _text(changed=False)
    path.write_bytes(first.encode())
    rows, ragged = _expected(first)
    [res] = project.run_json("items", expect=3)  # partial: the ragged row
    c = res["counts"]
    assert (c["inserted"], c["failed"], c["skipped"]) == (len(rows), len(ragged), 1), c
    assert project.query("SELECT id, name, qty FROM items ORDER BY id") == rows
    lines = [int(item.rsplit(":", 1)[1]) for (item,) in project.query("SELECT item FROM syncdash_item_errors")]
    assert lines == ragged == [11603]  # the quoted line break counts as a line, the blank one too
    assert ("two\r\nlines",) in project.query("SELECT name FROM items WHERE id = 11500")

    second = _text(changed=True)
    path.write_bytes(second.encode())
    rows, _ = _expected(second)
    [res] = project.run_json("items", expect=3)
    c = res["counts"]
    assert (c["updated"], c["inserted"], c["unchanged"]) == (2, 0, len(rows) - 2), c
    assert project.query("SELECT id, name, qty FROM items ORDER BY id") == rows
    changes = project.query("SELECT key FROM syncdash_changes WHERE change = 'update' ORDER BY id")
    assert changes == [("[10]",), ("[11900]",)]
