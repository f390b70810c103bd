"""`kind: csv`: local CSV files (globs, encodings, dialects), read in a forked child when it pays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncdash.config.kinds import KindSpec

if TYPE_CHECKING:
    from syncdash.kinds.csv.source import CsvSource, CsvSourceConfig


def _config() -> type[CsvSourceConfig]:
    from syncdash.kinds.csv.source import CsvSourceConfig

    return CsvSourceConfig


def _adapter(config: CsvSourceConfig) -> CsvSource:
    from syncdash.kinds.csv.source import CsvSource

    return CsvSource(config)


KIND = KindSpec("csv", config=_config, adapter=_adapter)
