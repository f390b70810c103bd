"""Flows: several sources and pushes run in order as one run (`flows:` in the config).

A flow is scheduled, queued, paused, retried and watched like a source: it has a name in the same namespace,
its own schedule and run history. Each step runs as that source's own run (its lease, cursor, checkpoint and
errors stay the source's), linked to the flow run, whose phases mirror the steps' progress and counts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from syncdash.config.models import KeyedValueError, SourceConfig
from syncdash.kinds.contract import Capabilities, Source, Stream


class FlowConfig(SourceConfig):
    kind: Literal["flow"] = "flow"
    steps: list[str] = Field(min_length=1, description="Source and push names, run in this order")
    on_error: Literal["stop", "continue"] = Field(
        default="stop", description="stop: a failed step ends the flow (failed); continue: the next steps run "
                                    "and the flow ends partial")
    # a flow writes no table of its own
    table: str | None = None  # type: ignore[assignment]
    primary_key: list[str] | None = None  # type: ignore[assignment]
    fields: dict[str, Any] | None = None  # type: ignore[assignment]

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError("a flow writes no table: its steps do")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[str]) -> list[str]:
        twice = [s for i, s in enumerate(v) if s in v[:i]]
        if twice:
            raise KeyedValueError(f"step {twice[0]!r} is listed twice", v.index(twice[0], v.index(twice[0]) + 1))
        return v

    @model_validator(mode="after")
    def _keys(self) -> FlowConfig:  # replaces SourceConfig._keys: no fields, no key
        for key in ("primary_key", "fields"):
            if getattr(self, key) is not None:
                raise KeyedValueError("a flow has no fields or primary key: its steps do", key)
        return self

    def target_tables(self) -> list[tuple[str, tuple[str | int, ...]]]:
        return []

    def step_names(self) -> list[str]:
        return self.steps

    def mapping_fingerprint(self) -> str:
        return "flow:" + ",".join(self.steps)


class FlowStep(Stream):
    """One step as the run machinery sees a stream: a phase named after the step's source."""

    config: FlowConfig
    unit = "rows"

    def __init__(self, flow: FlowConfig, name: str) -> None:
        self.config = flow
        self.phase = name
        self.name = name

    def total(self) -> int | None:
        return None


class FlowAdapter(Source):
    """A flow as a source: its steps are its streams, each run by the engine's flow executor."""

    capabilities = Capabilities(execution="flow", read_ahead=False, retry_items=False)
    config: FlowConfig
    unit = "rows"

    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        self._steps = [FlowStep(config, s) for s in config.steps]

    def streams(self) -> list[FlowStep]:
        return self._steps

    def describe(self) -> list[str]:
        return [f"flow: {' -> '.join(self.config.steps)} (on_error: {self.config.on_error})"]

    def total(self) -> int | None:
        return None
