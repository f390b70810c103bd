"""`kind: web`: JavaScript-rendered pages read by a real headless Chromium through Playwright."""

from syncdash.sources.web.config import WebSourceConfig
from syncdash.sources.web.source import WebSource

__all__ = ["WebSource", "WebSourceConfig"]
