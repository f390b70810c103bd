"""The forked reader (core/readahead.py) must give exactly what the inline path gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project

from syncdash.config.models import FieldSpec
from syncdash.engine import readahead
from syncdash.errors import SchemaMismatch
from syncdash.kinds.contract import Batch
from syncdash.kinds.mapping import build_mapper

CONFIG = """\
sources:
  - name: big
    kind: csv
    path: data/big.csv
    table: big
    primary_key: [id]
    batch_size: 700
    fields:
      id: {from: id, type: int}
      name: {from: name, required: true}
      score: {from: score, type: float}
      at: {from: at, type: datetime}
"""


def _write(project: Project, n: int, bump: int = 0) -> None:
    lines = ["id,name,score,at"]
    for i in range(1, n + 1):
        if i % 997 == 0:
            lines.append(f"{i},,1.0,2024-01-01T00:00:00")          # missing required value
        elif i % 1231 == 0:
            lines.append(f"{i},x,not-a-number,2024-01-01T00:00:00")
        else:
            lines.append(f"{i},name {i},{(i * 7 + (bump if i % 50 == 0 else 0)) % 1000}.5,"
                         f"2024-0{1 + i % 9}-1{i % 10}T10:00:0{i % 10}")
    project.write("data/big.csv", "\n".join(lines) + "\n")


def _state(project: Project) -> tuple[Any, ...]:
    rows = project.query("SELECT id, name, score, at, _hash, _deleted_at IS NOT NULL FROM big ORDER BY id")
    errors = sorted(project.query("SELECT line, \"column\", error_type FROM syncdash_item_errors"))
    return rows, errors


@pytest.mark.parametrize("reader", ["process", "inline"])
def test_both_readers_load_and_resync_identically(project: Project, reader: str,
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"SYNCDASH_READER": reader}
    project.config(CONFIG)
    _write(project, 12_000)
    first = project.run_json("big", expect=3, env=env)[0]
    assert first["counts"]["inserted"] == 12_000 - 12 - 9 and first["counts"]["failed"] == 21
    _write(project, 11_500, bump=3)
    second = project.run_json("big", expect=3, env=env)[0]
    assert second["counts"]["updated"] == 230 and second["counts"]["deleted"] == 500 - 1
    # the other reader on a copy of the same input must give the same table and errors
    other = Project(tmp_path_factory.mktemp("other"), project.env)
    other.config(CONFIG)
    _write(other, 12_000)
    other_env = {"SYNCDASH_READER": "inline" if reader == "process" else "process"}
    other.run_json("big", expect=3, env=other_env)
    _write(other, 11_500, bump=3)
    again = other.run_json("big", expect=3, env=other_env)[0]
    assert again["counts"] == second["counts"]
    mine, theirs = _state(project), _state(other)
    assert [r[:4] + r[5:] for r in mine[0]] == [r[:4] + r[5:] for r in theirs[0]]
    assert mine[1] == theirs[1]


def _template() -> Batch:
    fields = {"id": FieldSpec.model_validate({"from": "id", "type": "int"})}
    return Batch(records=[], mapper=build_mapper(fields, ["id"], positions={"id": 0}))


def test_child_errors_reach_the_run_with_their_type_and_message() -> None:
    template = _template()

    def batches() -> Iterator[Batch]:
        yield Batch(records=[["1"], ["2"]], mapper=template.mapper, lines=range(2, 4), file="f.csv",
                    checkpoint={"line": 3}, done=10, total=100)
        raise SchemaMismatch("f.csv:9: cannot parse CSV: unexpected end of data")

    def prepare(b: Batch) -> Any:
        rows = [b.mapper.fast(r) for r in b.records]
        return rows, b.lines, [], [r[0] for r in rows], None

    got = []
    with pytest.raises(SchemaMismatch, match=r"f\.csv:9: cannot parse CSV"):
        for batch, (rows, lines, _errors, keys, _kh) in readahead.read_ahead(batches(), prepare, template.mapper):
            got.append((batch.file, batch.checkpoint, batch.done, list(lines), keys, [r[0] for r in rows]))
    assert got == [("f.csv", {"line": 3}, 10, [2, 3], [1, 2], [1, 2])]
    assert json.dumps(got)  # everything crossed the pipe as plain data
