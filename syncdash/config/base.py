"""The building blocks every config model shares: a strict base model, located errors, durations.

Kept apart from models.py so modules that define config sections (config/ops.py) need not import the
source models, and the source models can include those sections.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator


class KeyedValueError(ValueError):
    """A validation error about a key below the object being validated.

    Pydantic reports a model validator's error at the model itself; the loader appends `loc` so the
    message names (and points at the line of) the key that is actually wrong, e.g. `primary_key`.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = loc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(v: Any) -> float:
    """Seconds from 30, "30s", "1.5m", "250ms"; ValueError says what is accepted."""
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a duration")
    if isinstance(v, int | float):
        if v < 0:
            raise ValueError(f"duration {v} is negative")
        return float(v)
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a duration: use e.g. 30s, 5m, 2h, 1d or 250ms")
    return float(m.group(1)) * _UNITS[m.group(2)]


Duration = Annotated[float, Field(ge=0), WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION.pattern}]})]


def duration_validator(*names: str) -> Any:
    return field_validator(*names, mode="before")(lambda cls, v: None if v is None else parse_duration(v))
