"""store/queries.row_history: a row's provenance from three real CLI syncs of a CSV file (insert, update,
soft delete), on a real SQLite store."""

from __future__ import annotations

from conftest import Project

from syncdash.store import queries
from syncdash.store.db import Store

CONFIG = """\
sources:
  - name: people
    kind: csv
    path: data/people.csv
    table: people
    primary_key: [id]
    fields:
      id: {type: int}
      name: name
      city: city
"""


def test_a_rows_history_lists_the_runs_that_inserted_updated_and_deleted_it(project: Project) -> None:
    project.config(CONFIG)
    project.write("data/people.csv", "id,name,city\n1,ada,lyon\n2,bob,nice\n3,cy,metz\n")
    project.cli("run", "people")
    project.write("data/people.csv", "id,name,city\n1,ada,paris\n2,bob,nice\n3,cy,metz\n")
    project.cli("run", "people")
    project.write("data/people.csv", "id,name,city\n2,bob,nice\n3,cy,metz\n")
    project.cli("run", "people")
    store = Store(f"sqlite:///{project.db}")
    events = queries.row_history(store, "people", [1])
    assert [(e.change, e.run.id) for e in events] == [("insert", 1), ("update", 2), ("delete", 3)]
    update = events[1]
    assert update.before == {"city": "lyon"} and update.after == {"city": "paris"}
    assert events[2].before is not None and events[2].before["city"] == "paris"
    assert [(e.change, e.run.id) for e in queries.row_history(store, "people", [2])] == [("insert", 1)]
    assert queries.row_history(store, "people", [99]) == []
    assert queries.row_history(store, "other", [1]) == []
