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
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from syncdash.config.models import KeyedValueError, SourceConfig, Strict
from syncdash.errors import SchemaMismatch, SourceUnavailable
from syncdash.kinds.contract import Batch, Capabilities, CheckpointInvalid, RecordProblem, Source, Stream
from syncdash.kinds.mapping import Mapper, build_mapper

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_SURROGATE = re.compile("[\udc80-\udcff]")


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
            prev = reader.line_num
            if skip_to > prev:
                for _ in reader:
                    if reader.line_num >= skip_to:
                        break
                prev = reader.line_num
            buf = stream.buffer
            limit = self.config.max_field
            # a batch can hold a value over the limit only if that many bytes were read for it (the readers
            # buffer ahead of the parser: 64 KiB of slack covers them); others skip the per-value check
            read_to = buf.tell() - 65536
            while True:
                records = list(islice(reader, bs))
                if not records:
                    break
                first_line = prev + 1
                prev = reader.line_num
                n = len(records)
                single_lines = prev - first_line + 1 == n
                lines: Sequence[int] = range(first_line, prev + 1) if single_lines else _line_numbers(
                    records, first_line)
                lens = set(map(len, records))
                problems: list[RecordProblem] = []
                skipped = 0
                odd = (ncols is not None and lens != {ncols}) or 0 in lens or not clean
                if buf.tell() - read_to > limit:
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
            raise SchemaMismatch(f"{fname}:{reader.line_num}: cannot parse CSV: {e}") from None
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

    @staticmethod
    def _decodes_cleanly(raw: Any, encoding: str) -> bool:
        """One strict pass in 1 MiB chunks; when it passes, rows need no per-value check."""
        dec = codecs.getincrementaldecoder(encoding)("strict")
        try:
            while chunk := raw.read(1 << 20):
                dec.decode(chunk)
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
        return True


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
