"""CSV files (one, or a glob read as one source) into a table.

Checkpoints are (file, line): csv.reader on a text stream is the fastest reader Python has, and
resuming re-parses the prefix, which full syncs need anyway to rebuild the set of keys seen.
"""

from __future__ import annotations

import codecs
import csv
import glob as globmod
import io
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from syncdash.config.models import KeyedValueError, SourceConfig, Strict
from syncdash.errors import SchemaMismatch, SourceUnavailable
from syncdash.kinds.contract import Batch, Capabilities, CheckpointInvalid, RecordProblem, Source, Stream
from syncdash.kinds.mapping import Mapper, build_mapper

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_SURROGATE = re.compile("[\udc80-\udcff]")
# encodings in which bytes below 0x80 always decode, alone, to ASCII (codecs.lookup names)
_ASCII_SUPERSETS = {"utf-8", "ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1252", "cp1250"}


class CsvOptions(Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    escapechar: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str = "utf-8"
    header: bool = True
    skip_rows: int = Field(default=0, ge=0, description="Lines to skip before the header/data")

    @field_validator("encoding")
    @classmethod
    def _enc(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}") from None
        return v

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delim(cls, v: Any) -> Any:
        return "\t" if v in ("\\t", "tab") else v


MAX_FIELD = 10 * 1024 * 1024  # bytes of one CSV value; a bigger one is an item error, not a row
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
PAYLOAD_HEAD = 1024  # characters of an oversized value kept in its item error: enough to find the row


class CsvSourceConfig(SourceConfig):
    kind: Literal["csv"]
    path: str = Field(description="File or glob, relative to the config file")
    csv: CsvOptions = Field(default_factory=CsvOptions)
    max_field: Annotated[int, WithJsonSchema({"anyOf": [{"type": "string", "description": "e.g. 10MB"},
                                                        {"type": "integer"}]})] = Field(
        default=MAX_FIELD, ge=1, description="Largest value of one CSV field (e.g. 10MB, 512KB, or bytes); a row "
                                             "with a bigger one is an item error naming its file and line")

    @field_validator("max_field", mode="before")
    @classmethod
    def _max_field(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        m = _SIZE.match(v)
        if m is None:
            raise ValueError(f"{v!r} is not a size: use e.g. 10MB, 512KB, 1MiB or a number of bytes")
        return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])

    _base_dir: Path | None = None

    def bind_config_file(self, file: Path) -> None:
        self._base_dir = file.resolve().parent

    def resolved_pattern(self) -> str:
        p = Path(self.path).expanduser()
        if not p.is_absolute() and self._base_dir is not None:
            p = self._base_dir / p
        return str(p)

    @model_validator(mode="after")
    def _positions(self) -> CsvSourceConfig:
        if not self.csv.header:
            for name, spec in self.fields.items():
                src = spec.from_ if spec.from_ is not None else name
                if isinstance(src, bool) or not (isinstance(src, int) or (isinstance(src, str) and src.isdigit())) \
                        or int(src) < 1:  # 0 would read the last column (index -1)
                    raise KeyedValueError(
                        f"field {name}: with csv.header false, `from` must be a 1-based column number",
                        "fields", name, *(("from",) if spec.from_ is not None else ()))
        return self


class CsvSource(Source, Stream):
    """A file (or glob of files) read as one stream; re-readable up to a checkpoint, so a resume replays."""

    capabilities = Capabilities(execution="pull", read_ahead=True, replayable=True)
    config: CsvSourceConfig
    unit = "bytes"

    def __init__(self, config: CsvSourceConfig) -> None:
        self.config = config
        self.opts = config.csv
        self._mappers: dict[tuple[str, ...], Mapper] = {}

    # ---- discovery ----------------------------------------------------------------------------

    def files(self) -> list[Path]:
        pattern = self.config.resolved_pattern()
        if globmod.has_magic(pattern):
            found = sorted(Path(p) for p in globmod.glob(pattern, recursive=True) if Path(p).is_file())
            if not found:
                raise SourceUnavailable(f"source {self.config.name}: no file matches {pattern}")
            return found
        p = Path(pattern)
        if not p.exists():
            raise SourceUnavailable(f"source {self.config.name}: file not found: {p}")
        if not p.is_file():
            raise SourceUnavailable(f"source {self.config.name}: not a file: {p}")
        return [p]

    def _fileset(self, files: list[Path]) -> list[list[Any]]:
        out = []
        for p in files:
            st = p.stat()
            # the checkpoint is stored: mask ${VAR} values in paths there too (compared in the same form)
            out.append([self._redact(str(p)), st.st_size, st.st_mtime_ns])
        return out

    def input_files(self) -> list[tuple[str, Path, int, int]]:
        """(name as stored, path, size, mtime_ns) of each file a read would read now: what the engine hashes
        to recognise an input that did not change since its last complete read (engine/unchanged.py)."""
        out = []
        for p in self.files():
            st = p.stat()
            out.append((self._redact(str(p)), p, st.st_size, st.st_mtime_ns))
        return out

    def _redact(self, text: str) -> str:
        for secret in sorted(self.config._secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def describe(self) -> list[str]:
        try:
            files = self.files()
            return [f"{len(files)} file(s): " + ", ".join(str(f) for f in files[:5])
                    + (" ..." if len(files) > 5 else "")]
        except SourceUnavailable as e:
            return [f"warning: {e}"]

    def total(self) -> int | None:
        try:
            return sum(p.stat().st_size for p in self.files())
        except (SourceUnavailable, OSError):
            return None

    # ---- reading ------------------------------------------------------------------------------

    def _mapper_for(self, header: list[str] | None, file: str) -> Mapper:
        cfg = self.config
        key = tuple(header) if header is not None else ()
        if key in self._mappers:
            return self._mappers[key]
        positions: dict[str, int] = {}
        names: dict[str, str] = {}
        missing: list[str] = []
        for col, spec in cfg.fields.items():
            src = spec.from_ if spec.from_ is not None else col
            if header is None:
                positions[col] = int(src) - 1
                names[col] = f"column {int(src)}"
                continue
            src = str(src)
            names[col] = src
            if src not in header:
                missing.append(f"{src!r} (field {col})")
                continue
            if header.count(src) > 1:
                raise SchemaMismatch(f"{file}: header has column {src!r} more than once")
            positions[col] = header.index(src)
        if missing:
            raise SchemaMismatch(
                f"{file}: header lacks column(s) {', '.join(missing)}; header has: {', '.join(header or [])}")
        mapper = build_mapper(cfg.fields, cfg.primary_key, positions=positions, source_names=names)
        self._mappers[key] = mapper
        return mapper

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        files = self.files()
        fileset = self._fileset(files)
        total = sum(f[1] for f in fileset)
        start_file, start_line = 0, 0
        if start is not None:
            if start.get("files") != fileset:
                raise CheckpointInvalid("the source files changed since the checkpoint")
            start_file, start_line = int(start["file"]), int(start["line"])
        stop_file = stop_line = None
        if stop is not None:
            if stop.get("files") != fileset:
                raise CheckpointInvalid("the source files changed since the checkpoint")
            stop_file, stop_line = int(stop["file"]), int(stop["line"])
        done_before = sum(f[1] for f in fileset[:start_file])
        for fi in range(start_file, len(files)):
            if stop_file is not None and fi > stop_file:
                return
            yield from self._read_file(
                files[fi], fi, fileset, total, done_before,
                skip_to=start_line if fi == start_file else 0,
                stop_at=stop_line if fi == stop_file else None, want=want)
            done_before += fileset[fi][1]

    def _read_file(self, path: Path, fi: int, fileset: list[list[Any]], total: int, done_before: int,
                   skip_to: int, stop_at: int | None,
                   want: Callable[[str | None, int | None], bool] | None) -> Iterator[Batch]:
        o = self.opts
        fname = str(path)
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise SourceUnavailable(f"cannot open {fname}: {e.strerror}") from None
        clean = self._decodes_cleanly(raw, o.encoding)
        raw.seek(0)
        stream = io.TextIOWrapper(raw, encoding=o.encoding, errors="surrogateescape", newline="")
        rows: _SplitRows | None = None
        try:
            reader = csv.reader(stream, delimiter=o.delimiter, quotechar=o.quotechar,
                                escapechar=o.escapechar, strict=False)
            for _ in range(o.skip_rows):
                if next(reader, None) is None:
                    break
            header: list[str] | None = None
            if o.header:
                header = next(reader, None)
                if header is None:
                    raise SchemaMismatch(f"{fname}: the file is empty, expected a header line")
                if header and header[0].startswith("\ufeff"):
                    header[0] = header[0][1:]
                if not clean and any(_SURROGATE.search(h) for h in header):
                    raise SchemaMismatch(f"{fname}: header line is not valid {o.encoding}")
                header = [h.strip() for h in header]
            mapper = self._mapper_for(header, fname)
            ncols = len(header) if header is not None else None
            bs = self.config.batch_size
            limit = self.config.max_field
            rows = _SplitRows(stream, reader, o, limit // 4, fast=self._splittable())
            prev = rows.line_num
            if skip_to > prev:
                rows.skip(skip_to)
                prev = rows.line_num
            buf = stream.buffer
            # a batch can hold a value over the limit only if that many bytes were read for it (the readers
            # buffer ahead of the parser: 64 KiB of slack covers them); others skip the per-value check
            read_to = buf.tell() - 65536
            while True:
                records = rows.take(bs)
                if not records:
                    break
                first_line = prev + 1
                prev = rows.line_num
                n = len(records)
                single_lines = prev - first_line + 1 == n
                lines: Sequence[int] = range(first_line, prev + 1) if single_lines else _line_numbers(
                    records, first_line)
                lens = set(map(len, records))
                problems: list[RecordProblem] = []
                skipped = 0
                odd = (ncols is not None and lens != {ncols}) or 0 in lens or not clean
                if rows.suspect or (not rows.split_only and buf.tell() - read_to > limit):
                    odd = odd or any(_oversized(r, limit, o.encoding) is not None for r in records)
                read_to = buf.tell() - 65536
                if stop_at is not None and prev > stop_at:
                    keep = sum(1 for ln in lines if ln <= stop_at)  # replay ends mid-batch
                    records, lines, odd = records[:keep], list(lines)[:keep], True
                if want is not None or odd:
                    records, lines, problems, skipped = self._sort_records(
                        records, lines, ncols, clean, header, mapper, fname, want)
                yield self._batch(records, lines, problems, skipped, mapper, fname, fi, prev, fileset,
                                  # the reader buffers ahead of the rows handed out: never claim the
                                  # file's end before its last batch
                                  done_before + min(buf.tell(), max(fileset[fi][1] - 1, 0)), total)
                if stop_at is not None and prev >= stop_at:
                    return
            yield self._batch([], [], [], 0, mapper, fname, fi, prev, fileset, done_before + fileset[fi][1],
                              total, last=True)
        except csv.Error as e:
            raise SchemaMismatch(f"{fname}:{rows.line_num if rows else reader.line_num}: cannot parse CSV: {e}"
                                 ) from None
        except UnicodeError as e:
            raise SchemaMismatch(f"{fname}: cannot decode as {o.encoding}: {e}") from None
        finally:
            stream.close()

    def _sort_records(self, records: list[list[str]], lines: Sequence[int], ncols: int | None, clean: bool,
                      header: list[str] | None, mapper: Mapper, fname: str,
                      want: Callable[[str | None, int | None], bool] | None
                      ) -> tuple[list[list[str]], list[int], list[RecordProblem], int]:
        """The slow path for a batch with blank, ragged or undecodable rows, or a retry filter."""
        enc = self.opts.encoding
        good: list[list[str]] = []
        good_lines: list[int] = []
        problems: list[RecordProblem] = []
        skipped = 0
        for rec, ln in zip(records, lines, strict=True):
            if want is not None and not want(fname, ln):
                continue
            if not rec:
                skipped += 1
            elif (big := _oversized(rec, self.config.max_field, enc)) is not None:
                problems.append(self._too_large(rec, big, ln, fname, header, mapper))
            elif ncols is not None and len(rec) != ncols:
                problems.append(RecordProblem(
                    f"row has {len(rec)} columns, header has {ncols}", "ragged", line=ln, file=fname,
                    payload=rec, key=mapper.try_key(rec)))
            elif not clean and any(_SURROGATE.search(v) for v in rec):
                col = next(i for i, v in enumerate(rec) if _SURROGATE.search(v))
                problems.append(RecordProblem(
                    f"bytes that are not valid {enc}", "decode", line=ln, file=fname,
                    column=header[col] if header else f"column {col + 1}",
                    payload=[v.encode("utf-8", "surrogateescape").decode("latin-1") for v in rec],
                    key=mapper.try_key(rec)))
            else:
                good.append(rec)
                good_lines.append(ln)
        return good, good_lines, problems, skipped

    def _too_large(self, rec: list[str], col: int, ln: int, fname: str, header: list[str] | None,
                   mapper: Mapper) -> RecordProblem:
        """A value over max_field: the row is an item error whose payload keeps only the head of each big
        value, so a 100 MB row costs the store a few KB, not 100 MB."""
        limit, enc = self.config.max_field, self.opts.encoding
        size = len(rec[col].encode(enc, "surrogateescape"))
        name = header[col] if header and col < len(header) else f"column {col + 1}"
        cut = [v if len(v) <= PAYLOAD_HEAD else f"{v[:PAYLOAD_HEAD]}... ({len(v)} characters cut)" for v in rec]
        key = mapper.try_key(cut)
        if key is not None and len(repr(key)) > PAYLOAD_HEAD:  # the big value is the key: not worth storing
            key = None
        return RecordProblem(
            f"{fname}:{ln}: field {name} is {size} bytes, over the {limit}-byte limit (max_field)", "too_large",
            line=ln, file=fname, column=name, payload=cut, key=key, retryable=True)

    def _batch(self, records: list[list[str]], lines: Sequence[int], problems: list[RecordProblem], skipped: int,
               mapper: Mapper, fname: str, fi: int, line: int, fileset: list[list[Any]], done: int,
               total: int, last: bool = False) -> Batch:
        # after the last batch of a file, the checkpoint points at the start of the next file
        ck = {"files": fileset, "file": fi + 1, "line": 0} if last else {"files": fileset, "file": fi, "line": line}
        return Batch(records=records, mapper=mapper, lines=lines, file=fname, problems=problems,
                     checkpoint=ck, done=done, total=total, skipped=skipped,
                     detail=f"{Path(fname).name} line {line}")

    def _splittable(self) -> bool:
        """Whether the dialect lets chunks without quote, escape and NUL characters be split with str.split."""
        return self.opts.delimiter not in "\r\n\x00"

    @staticmethod
    def _decodes_cleanly(raw: Any, encoding: str) -> bool:
        """One strict pass in 1 MiB chunks; when it passes, rows need no per-value check. It runs before the
        first batch, in the run's process: ASCII chunks of an ASCII-compatible encoding skip the decoder
        (bytes.isascii is ~5x cheaper), when no multi-byte sequence is pending across the chunk edge."""
        dec = codecs.getincrementaldecoder(encoding)("strict")
        ascii_ok = codecs.lookup(encoding).name in _ASCII_SUPERSETS
        try:
            while chunk := raw.read(1 << 20):
                if ascii_ok and chunk.isascii() and not dec.getstate()[0]:
                    continue
                dec.decode(chunk)
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
        return True


class SplitRecords(list[list[str]]):
    """Records split from whole lines (texts; no line break in them) at a delimiter: the read-ahead child
    can ship the lines, and the run's process split only the few it reads (engine/packed.py)."""

    def __init__(self, delimiter: str) -> None:
        super().__init__()
        self.delimiter = delimiter
        self.texts: list[str] = []


class _SplitRows:
    """A file's records after its header: text read in 256K-character chunks and split with str.split while a
    chunk has no quote, escape or NUL character and one kind of line break (the usual file: same records as
    csv.reader, at about half its cost); csv.reader from the first chunk that has any, to the file's end.

    line_num is csv.reader's (lines read so far). suspect: the last take() may hold a value over max_field (a
    line longer than a quarter of it was split, or csv read text this object had buffered); split_only: no
    record of the last take() came from csv.reader, whose own read-ahead the caller accounts for.
    """

    CHUNK = 1 << 18  # ~2,400 rows of 110 bytes: what is split ahead of the batch stays small

    def __init__(self, stream: io.TextIOWrapper, reader: Any, o: CsvOptions, quarter: int, fast: bool) -> None:
        self.stream = stream
        self.opts = o
        self.quarter = quarter
        self.lines = reader.line_num  # lines read before the current csv reader, or in split mode
        self.csv: Any = None if fast else reader
        self.csv_base = 0
        self.risky_lines = 0  # csv line_num up to which its lines came from text buffered here
        self.pending: list[list[str]] = []
        self.texts: list[str] = []  # the lines pending was split from
        self.pos = 0
        self.check_until = 0  # pending[:check_until] came from a chunk with a long line
        self.tail = ""  # text after the last line break read
        self.suspect = False
        self.split_only = fast

    @property
    def line_num(self) -> int:
        return self.csv_base + self.csv.line_num if self.csv is not None else self.lines

    def take(self, n: int) -> list[list[str]]:
        """Up to n records: a SplitRecords when all were split here (csv.reader's are a plain list)."""
        out: list[list[str]] = SplitRecords(self.opts.delimiter)
        self.suspect = False
        self.split_only = True
        while len(out) < n:
            if self.csv is not None:
                if self.csv.line_num < self.risky_lines:
                    self.suspect = True
                self.split_only = False
                out = [*out, *islice(self.csv, n - len(out))]
                break
            if self.pos >= len(self.pending):
                if not self._fill():
                    break
                continue
            end = min(len(self.pending), self.pos + n - len(out))
            if self.pos < self.check_until:
                self.suspect = True
            out += self.pending[self.pos:end]
            if isinstance(out, SplitRecords):
                out.texts += self.texts[self.pos:end]
            self.lines += end - self.pos
            self.pos = end
        return out

    def skip(self, to: int) -> None:
        """Read on until line `to` (a resume), like iterating csv.reader until its line_num reaches it."""
        while self.csv is None and self.lines < to:
            if self.pos >= len(self.pending) and not self._fill():
                return
            step = min(to - self.lines, len(self.pending) - self.pos)
            self.pos += step
            self.lines += step
        if self.csv is not None and self.line_num < to:
            for _ in self.csv:
                if self.line_num >= to:
                    break

    def _fill(self) -> bool:
        """Split the next chunk into pending, or hand the rest of the file to csv.reader; False at the end."""
        self.pending, self.texts, self.pos, self.check_until = [], [], 0, 0
        text = self.stream.read(self.CHUNK)
        if text:
            s = self.tail + text
            cut = s.rfind("\n") + 1
            if cut == 0:  # a line longer than a chunk: read on
                self.tail = s
                return True
            if not self._split(s[:cut]):
                self._fall_back(s)
                return True
            self.tail = s[cut:]
            return True
        if not self.tail:
            return False
        s, self.tail = self.tail, ""  # the last line has no line break
        if not self._split(s):
            self._fall_back(s)
        return True

    def _split(self, s: str) -> bool:
        o = self.opts
        if o.quotechar in s or (o.escapechar is not None and o.escapechar in s) or "\x00" in s:
            return False
        nl, cr = s.count("\n"), s.count("\r")
        if cr == 0:
            sep = "\n"
        elif cr == nl and s.count("\r\n") == nl:
            sep = "\r\n"
        else:
            return False
        lines = s.split(sep)
        if s.endswith(sep):
            lines.pop()
        if not lines:
            return True
        d = o.delimiter
        if sep + sep in s or s.startswith(sep):  # blank lines: csv.reader gives them as []
            self.pending = [ln.split(d) if ln else [] for ln in lines]
        else:
            self.pending = [ln.split(d) for ln in lines]
        self.texts = lines
        if max(map(len, lines)) > self.quarter:
            self.check_until = len(self.pending)
        return True

    def _fall_back(self, s: str) -> None:
        """csv.reader from here on, starting with the text buffered here, its last line completed first."""
        o = self.opts
        if not s.endswith("\n"):
            s += self.stream.readline()
        if len(s) > self.quarter:
            self.risky_lines = s.count("\n") + s.count("\r") + 1
        self.tail = ""
        self.csv_base = self.lines
        self.csv = csv.reader(chain(io.StringIO(s, newline=""), self.stream), delimiter=o.delimiter,
                              quotechar=o.quotechar, escapechar=o.escapechar, strict=False)


def _line_numbers(records: list[list[str]], first: int) -> list[int]:
    """Start line of each record when some span several lines (line breaks inside quoted values)."""
    out = []
    ln = first
    for rec in records:
        out.append(ln)
        ln += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in rec)
    return out


def _oversized(rec: list[str], limit: int, encoding: str) -> int | None:
    """The index of the first value over `limit` bytes, or None. A character is at most 4 bytes: values of up
    to limit/4 characters are never encoded to be measured."""
    quarter = limit // 4
    for i, v in enumerate(rec):
        if len(v) > quarter and (len(v) > limit or len(v.encode(encoding, "surrogateescape")) > limit):
            return i
    return None
