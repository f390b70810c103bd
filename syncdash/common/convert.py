"""Value conversions from source text to typed column values.

Each converter takes the raw value (a str from CSV, any JSON value from an API) and returns the
value written to the target, or raises ValueError with a message a user can act on.
Dates and datetimes are stored as ISO 8601 text so every SQL dialect compares them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

FieldType = Literal["str", "int", "float", "bool", "date", "datetime", "json"]
FIELD_TYPES: tuple[str, ...] = ("str", "int", "float", "bool", "date", "datetime", "json")

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise ValueError(f"{v!r} is not a whole number")
    s = str(v).strip().replace("_", "")
    try:
        return int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"{v!r} is not an integer") from None
        if f.is_integer():
            return int(f)
        raise ValueError(f"{v!r} is not a whole number") from None


def to_float(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        raise ValueError(f"{v!r} is not a number") from None


def to_bool(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int) and v in (0, 1):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return 1
    if s in _FALSE:
        return 0
    raise ValueError(f"{v!r} is not a boolean (use true/false, yes/no, 1/0)")


def _impossible(e: ValueError) -> bool:
    """True when the text has the right shape but names no real day or time ('31/02/2024', '2024-13-01'):
    strptime and fromisoformat then say "out of range" or "must be in", not that the format does not match."""
    msg = str(e)
    return "out of range" in msg or "must be in" in msg


def _date_converter(fmt: str | None) -> Callable[[Any], str]:
    if fmt:
        def conv(v: Any) -> str:
            try:
                return datetime.strptime(str(v).strip(), fmt).date().isoformat()
            except ValueError as e:
                if _impossible(e):  # the shape fits the format, the day does not exist
                    raise ValueError(f"{str(v).strip()!r} is not a valid date") from None
                raise ValueError(f"{v!r} does not match date format {fmt!r}") from None
    else:
        def conv(v: Any) -> str:
            s = str(v).strip()
            try:
                return date.fromisoformat(s).isoformat()
            except ValueError as e:
                if _impossible(e):
                    raise ValueError(f"{s!r} is not a valid date") from None
                try:
                    return datetime.fromisoformat(s).date().isoformat()
                except ValueError:
                    raise ValueError(f"{v!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    return conv


def _datetime_converter(fmt: str | None) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if isinstance(v, int | float) and not isinstance(v, bool) and not fmt:
            raise ValueError(f"{v!r} is a number, not a datetime (set format or use ISO 8601)")
        s = str(v).strip()
        try:
            if fmt:
                dt = datetime.strptime(s, fmt)
            else:
                dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
        except ValueError as e:
            if _impossible(e):
                raise ValueError(f"{s!r} is not a valid date and time") from None
            expected = f"format {fmt!r}" if fmt else "ISO 8601 (e.g. 2024-04-01T10:00:00Z)"
            raise ValueError(f"{v!r} is not a datetime in {expected}") from None
        return dt.isoformat()
    return conv


def to_json(v: Any) -> str:
    if isinstance(v, str):
        try:
            parsed = json.loads(v)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON: {e.msg} at character {e.pos}") from None
    else:
        parsed = v
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def converter_for(ftype: str, fmt: str | None = None) -> Callable[[Any], Any]:
    if ftype == "str":
        return to_str
    if ftype == "int":
        return to_int
    if ftype == "float":
        return to_float
    if ftype == "bool":
        return to_bool
    if ftype == "date":
        return _date_converter(fmt)
    if ftype == "datetime":
        return _datetime_converter(fmt)
    if ftype == "json":
        return to_json
    raise ValueError(f"unknown type {ftype!r}")
