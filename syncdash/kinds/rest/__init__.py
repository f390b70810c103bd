"""`kind: rest`: JSON APIs with pagination, auth, incremental cursors, rate limits, retries and breakers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncdash.config.kinds import KindSpec

if TYPE_CHECKING:
    from syncdash.kinds.rest.config import RestSourceConfig
    from syncdash.kinds.rest.source import RestSource


def _config() -> type[RestSourceConfig]:
    from syncdash.kinds.rest.config import RestSourceConfig

    return RestSourceConfig


def _adapter(config: RestSourceConfig) -> RestSource:
    from syncdash.kinds.rest.source import RestSource

    return RestSource(config)


KIND = KindSpec("rest", config=_config, adapter=_adapter)
