"""The config contract, driven through the real CLI.

Every mistake in a config file must come back as `FILE:LINE: KEY: reason` with exit code 2, ${VAR}
values are secrets that never reach output or the store, `schema`/`validate` describe the contract,
and the config file is looked up in the documented order.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

MARK = "# <-"  # marks the line an error must point at, so line numbers in the cases never drift


def _source(**overrides: str) -> str:
    """One valid csv source as YAML lines, with keys replaced or (value "") removed."""
    keys = {
        "name": "people",
        "kind": "csv",
        "path": "people.csv",
        "table": "people",
        "primary_key": "[id]",
        "fields": "\n      id: {from: id, type: int}\n      name: name",
    }
    keys.update(overrides)
    lines = [f"    {k}: {v}" for k, v in keys.items() if v != ""]
    lines[0] = "  - " + lines[0].lstrip()
    return "\n".join(lines) + "\n"


VALID = "database: sqlite:///syncdash.db\nsources:\n" + _source()

# (config text with MARK on the line the error must name, key the error must name, words of the reason)
CONFIG_ERRORS = [
    pytest.param(VALID + f"    colour: red  {MARK}\n", "sources.0.colour", "unknown key", id="unknown-source-key"),
    pytest.param(f"colour: red  {MARK}\n" + VALID, "colour", "unknown key", id="unknown-top-level-key"),
    pytest.param(VALID + f"    csv: {{delim: ';'}}  {MARK}\n", "sources.0.csv.delim", "unknown key",
                 id="unknown-csv-key"),
    pytest.param(VALID.replace("name: name", f"name: {{from: name, colour: 1}}  {MARK}"),
                 "sources.0.fields.name.colour", "unknown key", id="unknown-field-key"),
    pytest.param(VALID + f"    batch_size: lots  {MARK}\n", "sources.0.batch_size", "integer", id="wrong-type-int"),
    pytest.param(VALID.replace("name: name", f"name: {{from: name, required: maybe}}  {MARK}"),
                 "sources.0.fields.name.required", "boolean", id="wrong-type-bool"),
    pytest.param(VALID.replace("database: sqlite:///syncdash.db", f"database: 5  {MARK}"), "database",
                 "string", id="wrong-type-database"),
    pytest.param(VALID.replace("type: int}", f"type: integer}}  {MARK}"), "sources.0.fields.id.type",
                 "got 'integer'", id="unknown-field-type"),
    pytest.param(VALID + f"    mode: sometimes  {MARK}\n", "sources.0.mode", "got 'sometimes'", id="bad-mode"),
    pytest.param(VALID + _source(name=f"people  {MARK}", table="people2"), "sources.1.name",
                 "duplicate source name 'people'", id="duplicate-source-name"),
    pytest.param(VALID + _source(name="people2", table=f"People  {MARK}"), "sources.1.table",
                 "already the target of source 'people'", id="duplicate-table"),
    pytest.param(VALID.replace("name: people", f"name: Bad Name  {MARK}"), "sources.0.name", "[a-z0-9_-]+",
                 id="bad-source-name"),
    pytest.param(VALID.replace("table: people", f"table: \"people list\"  {MARK}"), "sources.0.table",
                 "not a valid identifier", id="bad-table-name"),
    pytest.param(VALID.replace("table: people", f"table: syncdash_runs  {MARK}"), "sources.0.table",
                 "reserved prefix", id="reserved-table-name"),
    pytest.param(VALID.replace("name: name", f"bad-col: name  {MARK}"), "sources.0.fields.bad-col",
                 "not a valid identifier", id="bad-column-name"),
    pytest.param(VALID.replace("name: name", f"name: [1, 2]  {MARK}"), "sources.0.fields.name",
                 "source column's name, or a mapping", id="bad-field-shape"),
    pytest.param(VALID.replace("primary_key: [id]", f"primary_key: [id, nope]  {MARK}"),
                 "sources.0.primary_key.1", "nope is not a field", id="primary-key-not-a-field"),
    pytest.param(VALID + f"    mode: incremental\n    deletes: hard  {MARK}\n", "sources.0.deletes",
                 "full only", id="deletes-with-incremental"),
    pytest.param(VALID.replace("type: int}", f"type: int, default: abc}}  {MARK}"),
                 "sources.0.fields.id.default", "not a valid int", id="default-of-wrong-type"),
    pytest.param(VALID.replace("name: name", f"name: {{from: name, format: '%Y'}}  {MARK}"),
                 "sources.0.fields.name.format", "date and datetime", id="format-on-a-str"),
    pytest.param(VALID.replace("kind: csv", f"kind: xml  {MARK}"), "sources.0.kind", "unknown source kind 'xml'",
                 id="unknown-kind"),
    pytest.param(VALID.replace("  - name: people", f"  - name: people  {MARK}").replace("    table: people\n", ""),
                 "sources.0.table", "required key is missing", id="missing-required-key"),
    pytest.param(VALID.replace("primary_key: [id]", f"primary_key: [id  {MARK}"), "primary_key",
                 "invalid YAML", id="invalid-yaml"),
    pytest.param(VALID + f"    path: other.csv  {MARK}\n", "sources.0.path", "duplicate key", id="duplicate-yaml-key"),
    pytest.param(VALID.replace("path: people.csv", f"path: ${{SYNCDASH_TEST_UNSET}}/people.csv  {MARK}"),
                 "sources.0.path", "${SYNCDASH_TEST_UNSET} is not set", id="missing-env-var"),
]


@pytest.mark.parametrize(("text", "key", "reason"), CONFIG_ERRORS)
def test_config_error_names_file_line_and_key(project: Project, text: str, key: str, reason: str) -> None:
    """Users fix configs from the message alone: it must say which file, which line and which key."""
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if MARK in ln)
    project.write("conf.yaml", text)
    proc = project.cli("--config", "conf.yaml", "validate")
    assert proc.returncode == 2, proc.stderr
    assert f"conf.yaml:{line}: {key}: " in proc.stderr, proc.stderr
    assert reason in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_config_error_is_reported_in_one_pass(project: Project) -> None:
    """Fixing one mistake per run is slow: independent sources' problems all show up together."""
    project.write("conf.yaml", VALID + _source(name="second", table="second", batch_size="0")
                  + _source(name="third", table="third", mode="sometimes"))
    proc = project.cli("--config", "conf.yaml", "validate")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("syncdash: config error: conf.yaml:")]
    assert len(errors) == 2, proc.stderr
    assert "sources.1.batch_size" in errors[0] and "sources.2.mode" in errors[1]


EVERY_KEY = """\
  - name: single
    kind: csv
    description: uses every documented key
    path: one.csv
    table: single_rows
    primary_key: id
    mode: full
    deletes: keep
    batch_size: 2
    csv: {delimiter: ";", quotechar: "'", encoding: latin-1, header: true}
    fields:
      id: {from: ID, type: int, required: true}
      name: Name
      born: {from: Born, type: date, format: "%d.%m.%Y"}
      score: {from: Score, type: float, default: 0}
      active: {from: Active, type: bool}
      meta: {from: Meta, type: json}
      seen: {from: Seen, type: datetime}
"""


def test_validate_prints_what_would_run_and_every_key_works(project: Project) -> None:
    """`validate` lists sources and tables; paths, globs and the database are relative to the config
    file (not the cwd); every documented key is accepted and has its effect on a real run."""
    project.write("conf/in/a.csv", "id,name\n1,Ada\n")
    project.write("conf/in/b.csv", "id,name\n2,Grace\n")
    project.write_bytes("conf/one.csv", "ID;Name;Born;Score;Active;Meta;Seen\n"
                        "7;'Zoë; Q';24.12.1990;;yes;{\"b\": 1, \"a\": [2]};2024-04-01T10:00:00Z\n".encode("latin-1"))
    project.write("conf/sync.yaml", "database: sqlite:///store/sync.db\nsources:\n"
                  + _source(name="many", path="in/*.csv", table="many_rows", mode="incremental") + EVERY_KEY)
    proc = project.cli("validate", "--config", "conf/sync.yaml")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"ok conf/sync.yaml: 2 source(s); store sqlite:///{project.root / 'conf/store/sync.db'}" in out
    assert "- many (csv) -> table many_rows, key (id), incremental, 2 field(s)" in out
    assert "- single (csv) -> table single_rows, key (id), full, deletes keep, 7 field(s), batches of 2" in out
    assert "2 file(s)" in out and str(project.root / "conf/in/a.csv") in out

    run = project.run_json("--all", "--config", "conf/sync.yaml", expect=0)
    assert [(r["source"], r["status"]) for r in run] == [("many", "succeeded"), ("single", "succeeded")]
    con = sqlite3.connect(project.root / "conf/store/sync.db")
    try:
        assert con.execute("SELECT id, name FROM many_rows ORDER BY id").fetchall() == [(1, "Ada"), (2, "Grace")]
        assert con.execute("SELECT id, name, born, score, active, meta, seen FROM single_rows").fetchall() == [
            (7, "Zoë; Q", "1990-12-24", 0.0, 1, '{"a":[2],"b":1}', "2024-04-01T10:00:00+00:00")]
    finally:
        con.close()


def test_validate_warns_about_a_missing_file_but_passes(project: Project) -> None:
    """A data file may appear later (a nightly export): validate says so but the config itself is valid."""
    project.config("sources:\n" + _source(path="nowhere/*.csv"))
    proc = project.cli("validate")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stdout and "no file matches" in proc.stdout


# ---- ${VAR} secrets -------------------------------------------------------------------------------

TOKEN = "tok-9f8e7d6c-SECRET"
DIRNAME = "dir-s3cr3t-77"


def _store_bytes(db: Path) -> bytes:
    """The SQLite file and its WAL/journal: a secret must not be in any of them."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if p.exists())


def test_secrets_never_reach_output_or_the_store(project: Project) -> None:
    """${VAR} values are masked in validate output, run errors, run history and the store's bytes."""
    env = {"API_TOKEN": TOKEN, "DATA_DIR": DIRNAME}
    (project.root / DIRNAME).mkdir()
    project.config("sources:\n" + _source(description='"token ${API_TOKEN}"', path="${DATA_DIR}/missing.csv"))
    outputs = []
    proc = project.cli("validate", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "***" in proc.stdout  # the path is shown, masked
    outputs.append(proc)
    proc = project.cli("run", "people", env=env)
    assert proc.returncode == 1, proc.stderr  # the file is missing: the run fails, quoting the path
    assert "file not found" in proc.stdout and "***" in proc.stdout
    outputs.append(proc)
    for args in (("show", "1"), ("show", "1", "--json")):
        outputs.append(project.cli(*args, env=env))
    for proc in outputs:
        for secret in (TOKEN, DIRNAME):
            assert secret not in proc.stdout and secret not in proc.stderr, (proc.args, proc.stdout, proc.stderr)
    data = _store_bytes(project.db)
    assert data, "no store written"
    leaked = [s for s in (TOKEN, DIRNAME) if s.encode() in data]
    assert not leaked, f"secret(s) {leaked} found in the store's bytes"


def test_secrets_are_masked_in_config_errors(project: Project) -> None:
    """A bad value from ${VAR} is reported by its key and line, never by its content."""
    project.config("sources:\n" + _source(table="${TABLE_NAME}"))
    proc = project.cli("validate", env={"TABLE_NAME": f"not a table {TOKEN}"})
    assert proc.returncode == 2
    assert "sources.0.table" in proc.stderr and "***" in proc.stderr
    assert TOKEN not in proc.stderr and TOKEN not in proc.stdout


def test_secret_in_a_path_is_not_stored_with_item_errors(project: Project) -> None:
    """Item errors and checkpoints name the file; a ${VAR} part of that path must still not be stored."""
    project.write(f"{DIRNAME}/people.csv", "id,name\n1,Ada\n2\n")
    project.config("sources:\n" + _source(path="${DATA_DIR}/people.csv"))
    proc = project.cli("run", "people", env={"DATA_DIR": DIRNAME})
    assert proc.returncode == 3, proc.stderr
    assert DIRNAME not in proc.stdout + proc.stderr
    leaked = DIRNAME.encode() in _store_bytes(project.db)
    assert not leaked, "the ${DATA_DIR} value was found in the store's bytes"


# ---- schema ---------------------------------------------------------------------------------------

def test_schema_is_json_schema_of_the_contract(project: Project) -> None:
    """Editors complete and check syncdash.yaml from this; it must describe what the loader accepts."""
    proc = project.cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"database", "target", "sources", "flows", "tenants", "notify", "retention",
                                         "daemon"}
    assert schema["additionalProperties"] is False
    kinds = schema["properties"]["sources"]["items"]["discriminator"]["mapping"]
    assert set(kinds) == {"csv", "rest", "push", "web"}
    source = schema["$defs"][kinds["csv"].rsplit("/", 1)[1]]
    props = source["properties"]
    assert props["kind"]["const"] == "csv"
    assert {"name", "kind", "path", "table", "primary_key", "mode", "deletes", "csv", "fields",
            "batch_size"} <= set(props)
    assert {"name", "kind", "path", "table", "primary_key", "fields"} <= set(source["required"])
    assert set(props["mode"]["enum"]) == {"full", "incremental"}
    assert set(props["deletes"]["enum"]) == {"soft", "hard", "keep"}
    assert props["name"]["pattern"] == "^[a-z0-9_-]+$"
    assert {"delimiter", "quotechar", "encoding", "header"} <= set(schema["$defs"]["CsvOptions"]["properties"])
    spec = schema["$defs"]["FieldSpec"]["properties"]
    assert {"from", "type", "required", "default", "format"} <= set(spec)
    assert set(spec["type"]["enum"]) == {"str", "int", "float", "bool", "date", "datetime", "json"}
    # the shorthands the loader accepts: `col: source_col` and `primary_key: id`
    field_kinds = props["fields"]["additionalProperties"]["anyOf"]
    assert {"type": "string"} in field_kinds and {"$ref": "#/$defs/FieldSpec"} in field_kinds
    assert {"type": "string"} in props["primary_key"]["anyOf"]


# ---- where the config comes from ------------------------------------------------------------------

def test_config_lookup_order(project: Project) -> None:
    """--config, then $SYNCDASH_CONFIG, then ./syncdash.yaml, then the user config dir; else a clear error."""
    user_cfg = Path(project.env["XDG_CONFIG_HOME"]) / "syncdash" / "syncdash.yaml"
    for where, path in (("flag", project.root / "flag.yaml"), ("envvar", project.root / "env/envvar.yaml"),
                        ("cwd", project.root / "syncdash.yaml"), ("user", user_cfg)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"database: sqlite:///{project.db}\nsources:\n" + _source(name=f"from_{where}"))
    env = {"SYNCDASH_CONFIG": str(project.root / "env/envvar.yaml")}

    def source_of(*args: str, **kw: dict[str, str]) -> str:
        proc = project.cli(*args, "validate", **kw)
        assert proc.returncode == 0, proc.stderr
        return next(ln for ln in proc.stdout.splitlines() if ln.startswith("- ")).split()[1]

    assert source_of("--config", "flag.yaml", env=env) == "from_flag"
    assert source_of(env=env) == "from_envvar"
    assert source_of() == "from_cwd"
    (project.root / "syncdash.yaml").unlink()
    assert source_of() == "from_user"

    # a named file that is missing is an error, not a reason to fall back to the next place
    proc = project.cli("validate", env={"SYNCDASH_CONFIG": "nope.yaml"})
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr and "SYNCDASH_CONFIG" in proc.stderr
    user_cfg.unlink()
    proc = project.cli("validate")
    assert proc.returncode == 2
    assert "no config file" in proc.stderr and "--config" in proc.stderr and str(user_cfg) in proc.stderr
