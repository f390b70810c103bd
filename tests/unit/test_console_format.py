"""The console's text helpers: durations under a second in milliseconds, checkpoints as readable fields."""

from __future__ import annotations

from syncdash.tui import format as fmt


def test_durations_under_a_second_show_milliseconds() -> None:
    assert fmt.seconds(0.4) == "400ms"
    assert fmt.seconds(0.0304) == "30ms"
    assert fmt.seconds(1.25) == "1.2s" or fmt.seconds(1.25) == "1.3s"
    assert fmt.seconds(75) == "1m15s"
    assert fmt.seconds(None) == "-"


def test_a_checkpoint_reads_as_dotted_fields() -> None:
    text = '{"stream": 0, "source": {"file": "data/c.csv", "offset": 1048213}, "batches": 3, "fresh": false}'
    assert fmt.checkpoint(text) == ("stream: 0  ·  source.file: data/c.csv  ·  source.offset: 1048213  ·  "
                                    "batches: 3  ·  fresh: false")
    assert fmt.checkpoint(None) == "none"
    assert fmt.checkpoint("not json") == "not json"
    assert fmt.checkpoint("[1, 2]") == "[1, 2]"


def test_a_phase_position_reads_as_words_in_the_singular_too() -> None:
    assert fmt.progress(1, None, "pages") == "1 page"
    assert fmt.progress(3, None, "pages") == "3 pages"
    assert fmt.progress(0, None, "rows") == "0 rows"
    assert fmt.progress(1, 1, "pages") == "1/1 page"
    assert fmt.progress(1, 9, "pages") == "1/9 pages"
    assert fmt.progress(1, 1, "bytes") == "1/1 byte"


def test_a_checkpoint_never_shows_a_urls_password() -> None:
    text = '{"source": {"page": {"n": 3, "url": "https://alice:s3cret-pw@127.0.0.1:8443/list?page=3"}}}'
    shown = fmt.checkpoint(text)
    assert "s3cret-pw" not in shown and "alice" not in shown
    assert "https://127.0.0.1:8443/list?page=3" in shown
