"""`kind: web`: JavaScript-rendered pages read by a real headless Chromium through Playwright."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncdash.config.kinds import KindSpec

if TYPE_CHECKING:
    from syncdash.kinds.web.config import WebSourceConfig
    from syncdash.kinds.web.source import WebSource


def _config() -> type[WebSourceConfig]:
    from syncdash.kinds.web.config import WebSourceConfig

    return WebSourceConfig


def _adapter(config: WebSourceConfig) -> WebSource:
    from syncdash.kinds.web.source import WebSource

    return WebSource(config)


KIND = KindSpec("web", config=_config, adapter=_adapter)
