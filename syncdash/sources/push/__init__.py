"""`kind: push`: rows of a table (or query) sent to an HTTP API, only those new or changed since their last push."""

from syncdash.sources.push.config import PushConfig
from syncdash.sources.push.target import PushTarget

__all__ = ["PushConfig", "PushTarget"]
