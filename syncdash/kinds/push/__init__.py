"""`kind: push`: rows of a table (or query) sent to an HTTP API, only those new or changed since their last push."""

from syncdash.kinds.push.config import PushConfig
from syncdash.kinds.push.target import PushTarget

__all__ = ["PushConfig", "PushTarget"]
