"""Field conversion messages say what is wrong with the value: a day that does not exist is "not a valid
date", a value of another shape "does not match" the format."""

from __future__ import annotations

import pytest

from syncdash.common.convert import converter_for as converter


@pytest.mark.parametrize(("ftype", "fmt", "value", "message"), [
    ("date", "%d/%m/%Y", "31/02/2024", "'31/02/2024' is not a valid date"),
    ("date", "%d/%m/%Y", "29/02/2023", "'29/02/2023' is not a valid date"),
    ("date", "%d/%m/%Y", "2024-02-01", "'2024-02-01' does not match date format '%d/%m/%Y'"),
    ("date", None, "2024-02-31", "'2024-02-31' is not a valid date"),
    ("date", None, "2024-13-01", "'2024-13-01' is not a valid date"),
    ("date", None, "yesterday", "'yesterday' is not an ISO 8601 date (YYYY-MM-DD)"),
    ("datetime", None, "2024-02-30T10:00:00Z", "'2024-02-30T10:00:00Z' is not a valid date and time"),
    ("datetime", None, "2024-02-01T25:00:00", "'2024-02-01T25:00:00' is not a valid date and time"),
    ("datetime", "%Y-%m-%d %H:%M", "2024-02-10", "'2024-02-10' is not a datetime in format '%Y-%m-%d %H:%M'"),
])
def test_invalid_dates_say_why(ftype: str, fmt: str | None, value: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        converter(ftype, fmt)(value)
    assert str(e.value) == message


def test_valid_dates_still_convert() -> None:
    assert converter("date", "%d/%m/%Y")("29/02/2024") == "2024-02-29"
    assert converter("date", None)("2024-02-29") == "2024-02-29"

