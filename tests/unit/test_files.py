"""common/files.py: owner-only folders and files whatever the umask (the writers of the store, target
databases, web artifacts and exports all go through it)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncdash.common.files import open_private, private_dir, touch_private


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_private_dir_makes_each_missing_folder_0700_and_leaves_existing_ones(tmp_path: Path,
                                                                             loose_umask: None) -> None:
    os.chmod(tmp_path, 0o755)
    d = private_dir(tmp_path / "a" / "b" / "c")
    assert d.is_dir()
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert mode(tmp_path) == 0o755


def test_touch_private_creates_0600_once(tmp_path: Path, loose_umask: None) -> None:
    f = tmp_path / "x" / "db.sqlite"
    assert touch_private(f) is True and mode(f) == 0o600 and mode(f.parent) == 0o700
    f.write_text("kept")
    assert touch_private(f) is False and f.read_text() == "kept"


def test_open_private_writes_0600_and_tightens_a_file_it_replaces(tmp_path: Path, loose_umask: None) -> None:
    new, old = tmp_path / "new.html", tmp_path / "old.png"
    old.write_bytes(b"stale")
    os.chmod(old, 0o644)
    with open_private(new, "w", encoding="utf-8") as fh:
        fh.write("<html>")
    with open_private(old, "wb") as fb:
        fb.write(b"\x89PNG")
    assert (mode(new), mode(old)) == (0o600, 0o600)
    assert new.read_text() == "<html>" and old.read_bytes() == b"\x89PNG"
    with pytest.raises(ValueError, match="writes files"):
        open_private(new, "r")
