"""`kind: web`: JavaScript-rendered pages read by a real headless Chromium through Playwright."""

from syncdash.kinds.web.config import WebSourceConfig
from syncdash.kinds.web.source import WebSource

__all__ = ["WebSource", "WebSourceConfig"]
