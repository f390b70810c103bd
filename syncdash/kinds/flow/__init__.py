"""Flows (`flows:` in the config): steps run one after another as one run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncdash.config.kinds import KindSpec

if TYPE_CHECKING:
    from syncdash.kinds.flow.config import FlowAdapter, FlowConfig


def _config() -> type[FlowConfig]:
    from syncdash.kinds.flow.config import FlowConfig

    return FlowConfig


def _adapter(config: FlowConfig) -> FlowAdapter:
    from syncdash.kinds.flow.config import FlowAdapter

    return FlowAdapter(config)


# internal: declared under `flows:`, never as a source's `kind:`
KIND = KindSpec("flow", config=_config, adapter=_adapter, internal=True)
