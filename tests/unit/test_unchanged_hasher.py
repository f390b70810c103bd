"""The digests engine/unchanged.py records are the files' blake2b however the work was split between the
low-priority thread and the run's thread (a hand-over mid-file must not skip or repeat a byte)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from syncdash.engine.unchanged import FileHasher


def _blake(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=32)).hexdigest()


def _files(tmp_path: Path) -> list[tuple[str, Path, int, int]]:
    out = []
    for i, size in enumerate((5_000_003, 0, 1, 3 * FileHasher.CHUNK)):
        p = tmp_path / f"f{i}.csv"
        p.write_bytes(os.urandom(size))
        st = p.stat()
        out.append((str(p), p, st.st_size, st.st_mtime_ns))
    return out


def test_digests_whoever_hashes(tmp_path: Path) -> None:
    files = _files(tmp_path)
    want = [_blake(f[1]) for f in files]
    for wait in (0.0, 0.002, 0.01, 1.0):  # handed over at once, mid-file, later, or after the thread finished
        h = FileHasher(files, {}, background=True)
        h.start()
        time.sleep(wait)
        assert h.finish() == want, wait
    h = FileHasher(files, {}, background=True)
    h.hurry.set()  # the thread hashes one chunk, then hands the rest of the first file over
    h.start()
    h.join()
    assert h.partial is not None and h.partial[2] == FileHasher.CHUNK and not h.done
    assert h.finish() == want


def test_known_digests_are_reused_and_a_missing_file_gives_none(tmp_path: Path) -> None:
    files = _files(tmp_path)
    known = {(files[0][0], files[0][2], files[0][3]): "reused"}
    h = FileHasher(files, known, background=False)
    h.start()
    assert h.finish() == ["reused", *(_blake(f[1]) for f in files[1:])]
    files[2][1].unlink()
    h = FileHasher(files, {}, background=True)
    h.start()
    assert h.finish() is None
