"""`kind: push`: rows of a table (or query) sent to an HTTP API, only those new or changed since their last push."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncdash.config.kinds import KindSpec

if TYPE_CHECKING:
    from syncdash.kinds.push.config import PushConfig
    from syncdash.kinds.push.target import PushTarget


def _config() -> type[PushConfig]:
    from syncdash.kinds.push.config import PushConfig

    return PushConfig


def _adapter(config: PushConfig) -> PushTarget:
    from syncdash.kinds.push.target import PushTarget

    return PushTarget(config)


KIND = KindSpec("push", config=_config, adapter=_adapter)
