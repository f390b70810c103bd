"""`kind: jsonl`: a tiny source kind that exists only in the tests, to prove the source contract is enough.

Adding a kind must be one package (here one module) plus one registration line, without touching engine, store
or config: a test registers it with `register_kind(JSONL_KIND)`. One JSON object per line; a line that is not a
JSON object is an item error carrying its line number, like a ragged CSV row. Checkpoints are (file identity,
line): a resumed or replayed run re-reads the file up to that line, as CSV does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from syncdash.config.kinds import KindSpec
from syncdash.config.models import SourceConfig
from syncdash.errors import SourceUnavailable
from syncdash.kinds.contract import Batch, Capabilities, CheckpointInvalid, RecordProblem, Source, Stream
from syncdash.kinds.mapping import Mapper, build_mapper


class JsonlSourceConfig(SourceConfig):
    kind: Literal["jsonl"]
    path: str = Field(description="A JSON-lines file, relative to the config file")

    _base_dir: Path | None = None

    def bind_config_file(self, file: Path) -> None:
        self._base_dir = file.resolve().parent

    def resolved_path(self) -> Path:
        p = Path(self.path).expanduser()
        return p if p.is_absolute() or self._base_dir is None else self._base_dir / p


class JsonlSource(Source, Stream):
    """A single-stream source: it is its own stream."""

    unit = "rows"

    def __init__(self, config: JsonlSourceConfig) -> None:
        self.config = config
        c = config
        paths = {col: str(c.source_name_of(col)) for col in c.fields}
        self.mapper: Mapper = build_mapper(c.fields, c.primary_key, paths=paths, source_names=paths)

    def _file(self) -> Path:
        p = self.config.resolved_path()
        if not p.is_file():
            raise SourceUnavailable(f"source {self.config.name}: file not found: {p}")
        return p

    def describe(self) -> list[str]:
        return [f"JSON lines: {self.config.resolved_path()}"]

    def total(self) -> int | None:
        return None

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        path = self._file()
        st = path.stat()
        identity = [str(path), st.st_size, st.st_mtime_ns]
        for ck in (start, stop):
            if ck is not None and ck.get("file") != identity:
                raise CheckpointInvalid("the file changed since the checkpoint")
        skip_to = int(start["line"]) if start else 0
        stop_at = int(stop["line"]) if stop else None
        fname = str(path)
        records: list[dict[str, Any]] = []
        lines: list[int] = []
        problems: list[RecordProblem] = []
        skipped = 0
        n = 0
        with path.open(encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                if n <= skip_to:
                    continue
                if stop_at is not None and n > stop_at:
                    n -= 1
                    break
                if want is not None and not want(fname, n):
                    continue
                if not text.strip():
                    skipped += 1
                    continue
                try:
                    rec = json.loads(text)
                    if not isinstance(rec, dict):
                        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
                except ValueError as e:
                    problems.append(RecordProblem(f"not a JSON object: {e}", "parse", line=n, file=fname,
                                                  payload=text.rstrip("\n")))
                    continue
                records.append(rec)
                lines.append(n)
                if len(records) >= self.config.batch_size:
                    yield self._batch(records, lines, problems, skipped, identity, fname, n)
                    records, lines, problems, skipped = [], [], [], 0
        yield self._batch(records, lines, problems, skipped, identity, fname, max(n, skip_to))

    def _batch(self, records: list[dict[str, Any]], lines: list[int], problems: list[RecordProblem], skipped: int,
               identity: list[Any], fname: str, line: int) -> Batch:
        return Batch(records=records, mapper=self.mapper, lines=lines, file=fname, problems=problems,
                     checkpoint={"file": identity, "line": line}, done=line, skipped=skipped,
                     detail=f"{Path(fname).name} line {line}")


JSONL_KIND = KindSpec("jsonl", config=JsonlSourceConfig, adapter=JsonlSource)


class WholeFileConfig(JsonlSourceConfig):
    kind: Literal["jsonl_whole"]  # type: ignore[assignment]


class WholeFileSource(JsonlSource):
    """A kind (from outside the package) that can only re-read its whole input, never one item: what `r`, `R`,
    `syncdash retry` and the API must refuse to retry item by item."""

    capabilities = Capabilities(retry_items=False)


JSONL_WHOLE_KIND = KindSpec("jsonl_whole", config=WholeFileConfig, adapter=WholeFileSource)
