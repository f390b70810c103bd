"""`kind: rest`: JSON APIs with pagination, auth, incremental cursors, rate limits, retries and breakers."""

from syncdash.kinds.rest.config import RestSourceConfig
from syncdash.kinds.rest.source import RestSource

__all__ = ["RestSource", "RestSourceConfig"]
