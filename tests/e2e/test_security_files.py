"""Issue 15, files: what syncdash writes to disk is owner-only (0600 files, 0700 folders) whatever the umask.

Every process here runs with umask 0o022, the common default under which a plain open() makes files every
user on the machine can read. The store's WAL and SHM exist only while a connection is open, so they are
looked at from a process that holds the store open.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import SYNCDASH, Project

UMASK = 0o022


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(project: Project, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real CLI under umask 0o022."""
    return subprocess.run([*SYNCDASH, *args], cwd=project.root, env=project.env, text=True, capture_output=True,
                          timeout=timeout, umask=UMASK)


CSV_SOURCE = """\
database: sqlite:///{db}
sources:
  - name: items
    kind: csv
    path: data/items.csv
    table: items
    primary_key: [id]
    {target}
    fields:
      id: {{type: int}}
      name: name
"""


def write_items(project: Project, n: int = 3) -> None:
    project.write("data/items.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, n + 1)))


def test_store_target_and_their_folders_are_owner_only(project: Project) -> None:
    """A run creates the store in a new folder and a separate SQLite target database in another: both files
    0600, every folder syncdash made 0700; the project folder it did not make keeps its mode."""
    write_items(project)
    db = project.root / "state" / "deep" / "syncdash.db"
    tgt = project.root / "tables" / "t.db"
    project.write("syncdash.yaml", CSV_SOURCE.format(db=db, target=f"target: sqlite:///{tgt}"))
    before = mode(project.root)
    proc = cli(project, "run", "items", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["counts"]["inserted"] == 3
    assert mode(db) == 0o600 and mode(tgt) == 0o600
    for folder in (db.parent, db.parent.parent, tgt.parent):
        assert mode(folder) == 0o700, folder
    assert mode(project.root) == before, "a folder the user made is left as it is"
    # the export of the table is the table's rows: 0600 as well, even when the file existed before
    (project.root / "old.csv").write_text("stale\n")
    os.chmod(project.root / "old.csv", 0o644)
    for out in ("items.csv", "old.csv"):
        proc = cli(project, "export", "items", "--format", "csv", "-o", out)
        assert proc.returncode == 0, proc.stderr
        assert mode(project.root / out) == 0o600, out
        rows = (project.root / out).read_text().splitlines()[1:]
        assert [r.split(",")[:2] for r in rows] == [["1", "n1"], ["2", "n2"], ["3", "n3"]]


HOLD = textwrap.dedent("""\
    import os, stat, sys, time
    from syncdash.store.db import Store
    from syncdash.targets import open as target_db

    store = Store(sys.argv[1])
    c = store.conn()
    c.begin()
    c.execute("INSERT INTO syncdash_meta (key, value) VALUES ('held', 'yes')")
    c.commit()
    t = target_db.connect(store, sys.argv[2])
    t.begin()
    t.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
    t.execute("INSERT INTO held VALUES (1)")
    t.commit()
    print("open", flush=True)
    sys.stdin.readline()
    c.close()
    t.close()
""")


def test_wal_and_shm_are_owner_only_while_the_store_is_open(project: Project) -> None:
    """The WAL and SHM beside the store and beside a target database, looked at while a process holds them."""
    db = project.root / "new" / "syncdash.db"
    tgt = project.root / "new" / "target.db"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, f"sqlite:///{db}", f"sqlite:///{tgt}"],
                            cwd=project.root, env=project.env, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=UMASK)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open", proc.stderr
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), tgt, Path(f"{tgt}-wal"), Path(f"{tgt}-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(db.parent) == 0o700
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_reopening_a_private_store_tightens_loosened_sidecars(project: Project) -> None:
    """WAL/SHM an older syncdash (or another tool) left world-readable beside a 0600 store are 0600 again once
    syncdash opens the store; the store file itself is never loosened."""
    import sqlite3

    db = project.root / "syncdash.db"
    write_items(project)
    project.write("syncdash.yaml", CSV_SOURCE.format(db=db, target=""))
    assert cli(project, "run", "items").returncode == 0
    assert mode(db) == 0o600
    keep = sqlite3.connect(db)  # holds the WAL and SHM in place while they are loosened by hand
    try:
        keep.execute("PRAGMA journal_mode=WAL")
        keep.execute("SELECT count(*) FROM items").fetchall()
        for side in ("-wal", "-shm"):
            os.chmod(f"{db}{side}", 0o644)
        proc = cli(project, "status")
        assert proc.returncode == 0, proc.stderr
        assert (mode(Path(f"{db}-wal")), mode(Path(f"{db}-shm")), mode(db)) == (0o600, 0o600, 0o600)
    finally:
        keep.close()


def test_a_store_the_user_shares_keeps_its_mode(project: Project) -> None:
    """Owner-only is what syncdash creates; a store file the user made group-readable is the user's choice."""
    db = project.root / "shared.db"
    db.touch()
    os.chmod(db, 0o640)
    write_items(project)
    project.write("syncdash.yaml", CSV_SOURCE.format(db=db, target=""))
    assert cli(project, "run", "items").returncode == 0
    assert mode(db) == 0o640
