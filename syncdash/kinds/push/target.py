"""The push adapter the registry hands out: what the engine's push execution needs to know about a push.

The sending itself lives in syncdash/engine/push.py, on the same run machinery as every pull: lease,
phases, throttled progress, item errors, checkpoints and resume.
"""

from __future__ import annotations

from syncdash.kinds.contract import Capabilities, Source, Stream
from syncdash.kinds.push.config import PushConfig


class PushStream(Stream):
    """One pass over the rows (one per tenant when the push runs for each tenant)."""

    config: PushConfig
    unit = "rows"

    def __init__(self, config: PushConfig, phase: str, scope: dict[str, str] | None = None) -> None:
        self.config = config
        self.phase = phase
        self.scope = scope or {}

    def total(self) -> int | None:
        return None


class PushTarget(Source):
    """Rows of a table (or query) sent to an HTTP API; run by the engine's push executor."""

    capabilities = Capabilities(execution="push", read_ahead=False)
    config: PushConfig
    unit = "rows"

    def __init__(self, config: PushConfig) -> None:
        self.config = config
        self._streams = [PushStream(c, phase, scope) for c, phase, scope in tenant_streams(config, "push")]

    def streams(self) -> list[PushStream]:
        return self._streams

    def describe(self) -> list[str]:
        cfg = self.config
        src = f"table {cfg.from_table}" if cfg.from_table else "a query"
        per = "one record per request" if cfg.batch == 1 else f"batches of {cfg.batch}"
        dels = f", deletes as {cfg.delete.method}" if cfg.deletes == "send" else ""
        return [f"push: rows of {src} by ({', '.join(cfg.key)}) -> {cfg.method} {cfg.url} ({per}{dels})"]

    def total(self) -> int | None:
        return None


def tenant_streams(config: PushConfig, phase: str) -> list[tuple[PushConfig, str, dict[str, str]]]:
    """(config, phase name, scope) per tenant, or the push itself when it is not run per tenant."""
    from syncdash.config.tenants import expand

    return [(c, phase if t is None else t, {} if t is None else {config.tenant_column: t})
            for t, c in expand(config)]
