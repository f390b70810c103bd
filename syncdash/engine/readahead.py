"""Read and map the next batches in a forked child process while the run writes the current one.

A large load is split about evenly between parsing/mapping and SQLite writes. A thread cannot overlap them:
sqlite3 releases the GIL around every row it steps, so the two threads hand the GIL back and forth per row
and the run gets slower, not faster. A forked child has its own interpreter: it parses and maps, and
hands over each batch's typed rows through a pipe (marshal, ~1 us a row to dump, ~0.8 us to load).
A writer thread in the child and a reader thread here move the bytes, so neither side waits for the
other at the pipe; they do no per-row work, so they cost no GIL hand-offs.

The child never touches the database and leaves with os._exit, so nothing it inherited is finalised.
Checkpoints, commits and progress stay in the run's process, in batch order: resume semantics are those
of the inline path. At most about four batches are in flight (one queued in the child, the pipe, two
queued here), so memory stays flat. SYNCDASH_READER=inline turns the child off (debugging, no fork).

A stream that fetches over HTTP (REST) runs whole in the child, fetch threads included (forked before its
first request: threads do not survive a fork), with ReaderHooks: what the child learns that the run needs
(breaker saves, warnings, the cursor, waits) comes back as "M" messages, in order with the batches.
"""
from __future__ import annotations

import gc
import marshal
import os
import pickle
import queue
import signal
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

from syncdash.errors import SourceError
from syncdash.kinds.contract import Batch, ReaderHooks
from syncdash.kinds.mapping import Mapper

# what the reader hands the writer per batch: typed rows, their source lines, row errors, keys, None; or, on
# a re-sync, the raw records, lines, errors, None and the JSON [key..., hash] of each (see Engine._screened)
Prepared = tuple[list[Any], Any, list[dict[str, Any]], list[Any] | None, str | None]

_HEADER = struct.Struct("<Q")


def enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("SYNCDASH_READER", "process") != "inline"


def _frame(msg: Any) -> bytes:
    # version 2: no back-references, so no per-object hash-table lookup (~0.4 us a row to dump, not ~0.9)
    data = marshal.dumps(msg, 2)
    return _HEADER.pack(len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _pack(batch: Batch, prepared: Prepared) -> tuple[Any, ...]:
    rows, lines, errors, keys, key_hash = prepared
    # CSV line numbers are usually a range: send its ends, not 10k ints
    where = (lines.start, lines.stop) if isinstance(lines, range) and lines.step == 1 else list(lines)
    return ("B", batch.file, batch.checkpoint, batch.done, batch.total, batch.skipped, batch.detail, rows,
            where, errors, keys, key_hash)


def _pickled_error(e: BaseException) -> bytes:
    try:
        data = pickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(SourceError(f"{type(e).__name__}: {e}"))


def _child(batches: Iterator[Batch], prepare: Callable[[Batch], Prepared], wfd: int,
           hooks: ReaderHooks | None = None) -> None:
    """Prepare batches on this thread; a writer thread pushes the previous one into the pipe meanwhile,
    so the child never idles waiting for the parent to read (os.write releases the GIL)."""
    # Ctrl-C and a group-wide SIGTERM (systemd, shells) are cancels, which the run's process handles at a
    # batch boundary; were the child to die first, the run would fail instead. The child still cannot
    # outlive the run: its next write to the closed pipe ends it, and the run kills it on every exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def writer() -> None:
        try:
            while (data := q.get()) is not None:
                _write_all(wfd, data)
        except OSError:  # the run's process is gone or gave up: nothing left to do
            stop.set()

    def send(message: Any) -> None:  # any thread of the child (fetch threads report breaker changes)
        _put(q, _frame(("M", pickle.dumps(message))), stop)

    def finish() -> None:
        if hooks is not None:
            send(hooks.finish())

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        if hooks is not None:
            hooks.setup(send)
        for batch in batches:
            if not _put(q, _frame(_pack(batch, prepare(batch))), stop):
                return
        finish()
        _put(q, _frame(("END",)), stop)
    except BaseException as e:
        try:
            finish()
        except BaseException:  # the error below is what the run reports
            pass
        _put(q, _frame(("E", _pickled_error(e))), stop)
    finally:
        _put(q, None, stop)
        t.join()


def read_ahead(batches: Iterator[Batch], prepare: Callable[[Batch], Prepared], mapper: Mapper, *,
               hooks: ReaderHooks | None = None, poll: Callable[[], None] | None = None,
               meanwhile: Callable[[], None] | None = None) -> Iterator[tuple[Batch, Prepared]]:
    """Yield (batch, prepared) in input order; batches carry no records, only where they are.

    hooks: the stream runs whole in the child and talks back (see ReaderHooks). poll: called about every
    quarter second while no batch arrives; what it raises (a cancel) ends the child, which may be sitting
    out a retry's backoff. meanwhile: work of this process done once the child runs (the batch read before
    the fork is written while the child reads the next ones, not before the child starts)."""
    rfd, wfd = os.pipe()
    gc.freeze()  # the child's collections then skip everything inherited (no copy-on-write of the heap)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, measured through the parent's results
        code = 0
        try:
            gc.disable()  # parsing and mapping make no reference cycles; refcounting frees each batch
            os.close(rfd)
            _child(batches, prepare, wfd, hooks)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    gc.unfreeze()
    os.close(wfd)
    # a reader thread keeps the pipe drained while this thread writes to SQLite (os.read releases the GIL)
    frames: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                head = _read_exact(rfd, _HEADER.size)
                if len(head) < _HEADER.size:
                    break
                (n,) = _HEADER.unpack(head)
                data = _read_exact(rfd, n)
                if len(data) < n or not _put(frames, data, stop):
                    break
        finally:
            _put(frames, None, stop)

    thread = threading.Thread(target=reader, name="syncdash-readahead", daemon=True)
    thread.start()
    finished = False
    try:
        if meanwhile is not None:
            meanwhile()
        while True:
            try:
                data = frames.get(timeout=None if poll is None else 0.25)
            except queue.Empty:
                assert poll is not None
                poll()
                continue
            if data is None:
                raise SourceError("the reader process stopped without finishing the input "
                                  "(see the messages above)")
            msg = marshal.loads(data)
            if msg[0] == "END":
                finished = True
                return
            if msg[0] == "E":
                finished = True
                raise pickle.loads(msg[1])
            if msg[0] == "M":
                if hooks is not None:
                    hooks.receive(pickle.loads(msg[1]))
                continue
            (_, file, checkpoint, done, total, skipped, detail, rows, where, errors, keys, key_hash) = msg
            lines = range(*where) if isinstance(where, tuple) else where
            batch = Batch(records=[], mapper=mapper, lines=lines, file=file, checkpoint=checkpoint,
                          done=done, total=total, skipped=skipped, detail=detail)
            yield batch, (rows, lines, errors, keys, key_hash)
    finally:
        stop.set()
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
        thread.join()
        os.close(rfd)
