"""Read and map the next batch in a forked child process while the run writes the current one.

A large load is split about evenly between parsing/mapping and SQLite writes. A thread cannot overlap them:
sqlite3 releases the GIL around every row it steps, so the two threads hand the GIL back and forth per row
and the run gets slower, not faster. A forked child has its own interpreter: it parses and maps, and
hands over each batch's typed rows through a pipe (marshal, ~0.4 us a row each side), so on two cores the
read side costs the writer almost nothing.

The child never touches the database and leaves with os._exit, so nothing it inherited is finalised.
Checkpoints, commits and progress stay in the run's process, in batch order: resume semantics are those
of the inline path. Only one batch is ever in flight (the pipe blocks the child), so memory stays flat.
SYNCDASH_READER=inline turns the child off (debugging, platforms without fork).
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import signal
import struct
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from syncdash.errors import SourceError
from syncdash.sources.base import Batch

Prepared = tuple[list[tuple[Any, ...]], list[int], list[dict[str, Any]], list[Any]]

_HEADER = struct.Struct("<Q")


def enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("SYNCDASH_READER", "process") != "inline"


def _send(w: BinaryIO, msg: Any) -> None:
    data = marshal.dumps(msg)
    w.write(_HEADER.pack(len(data)))
    w.write(data)
    w.flush()


def _recv(r: BinaryIO) -> Any:
    head = r.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise SourceError("the reader process stopped without finishing the input (see the messages above)")
    (n,) = _HEADER.unpack(head)
    data = r.read(n)
    if len(data) < n:
        raise SourceError("the reader process stopped in the middle of a batch")
    return marshal.loads(data)


def _pack(batch: Batch, prepared: Prepared) -> tuple[Any, ...]:
    rows, lines, errors, keys = prepared
    # CSV line numbers are usually a range: send its ends, not 10k ints
    where = (lines.start, lines.stop) if isinstance(lines, range) and lines.step == 1 else list(lines)
    return ("B", batch.file, batch.checkpoint, batch.done, batch.total, batch.skipped, batch.detail, rows,
            where, errors, keys)


def _pickled_error(e: BaseException) -> bytes:
    try:
        data = pickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(SourceError(f"{type(e).__name__}: {e}"))


def _child(batches: Iterator[Batch], prepare: Callable[[Batch], Prepared], wfd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process decides about cancelling
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with os.fdopen(wfd, "wb", buffering=1 << 20) as w:
        try:
            for batch in batches:
                _send(w, _pack(batch, prepare(batch)))
            _send(w, ("END",))
        except BrokenPipeError:
            return
        except BaseException as e:
            _send(w, ("E", _pickled_error(e)))


def read_ahead(batches: Iterator[Batch], prepare: Callable[[Batch], Prepared],
               template: Batch) -> Iterator[tuple[Batch, Prepared]]:
    """Yield (batch, prepared) in input order; batches carry no records, only where they are."""
    rfd, wfd = os.pipe()
    gc.freeze()  # the child's collections then skip everything inherited (no copy-on-write of the heap)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, measured through the parent's results
        code = 0
        try:
            gc.disable()  # parsing and mapping make no reference cycles; refcounting frees each batch
            os.close(rfd)
            _child(batches, prepare, wfd)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    gc.unfreeze()
    os.close(wfd)
    finished = False
    try:
        with os.fdopen(rfd, "rb", buffering=1 << 20) as r:
            while True:
                msg = _recv(r)
                if msg[0] == "END":
                    finished = True
                    return
                if msg[0] == "E":
                    finished = True
                    raise pickle.loads(msg[1])
                (_, file, checkpoint, done, total, skipped, detail, rows, where, errors, keys) = msg
                lines = range(*where) if isinstance(where, tuple) else where
                batch = Batch(records=[], mapper=template.mapper, lines=lines, file=file, checkpoint=checkpoint,
                              done=done, total=total, skipped=skipped, detail=detail)
                yield batch, (rows, lines, errors, keys)
    finally:
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
