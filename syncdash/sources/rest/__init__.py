"""`kind: rest`: JSON APIs with pagination, auth, incremental cursors, rate limits, retries and breakers."""

from syncdash.sources.rest.config import RestSourceConfig
from syncdash.sources.rest.source import RestSource

__all__ = ["RestSource", "RestSourceConfig"]
