"""The one masking function and the URL helpers of issue 15, one part at a time."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from syncdash.common.dialect import mask_url
from syncdash.common.secrets import is_credential_header, mask, mask_then_cut, scrub_userinfo
from syncdash.config.models import redact
from syncdash.engine.pushrows import BadSegment, segment
from syncdash.errors import FetchError
from syncdash.kinds.rest.client import loads_json
from syncdash.kinds.rest.config import origin_of, parse_size, strip_userinfo
from syncdash.kinds.web.config import WebSourceConfig
from syncdash.kinds.web.source import WebSource

SECRET = 'pa ss/w+rd&="ü'


@pytest.mark.parametrize("form", [
    SECRET, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET), json.dumps(SECRET)[1:-1],
    json.dumps(SECRET, ensure_ascii=False)[1:-1], base64.b64encode(SECRET.encode()).decode(),
])
def test_every_form_of_a_secret_is_masked(form: str) -> None:
    out = redact(f"before {form} after", {SECRET})
    assert out.startswith("before ***") and out.endswith(" after"), out


@pytest.mark.parametrize("prefix", ["", "x", "xy", "xyz"])
def test_base64_of_a_secret_inside_a_longer_value_is_masked_at_any_alignment(prefix: str) -> None:
    blob = base64.b64encode(f"{prefix}alice:{SECRET}tail".encode()).decode()
    masked = mask(blob, {SECRET})
    head, _, tail = masked.partition("***")
    assert _ and len(head) + len(tail) <= len(blob) - 16, masked
    decoded = base64.b64decode(head[:len(head) // 4 * 4])
    assert SECRET.encode()[:4] not in decoded, "the masked part starts at the secret's first full group"


def test_basic_auth_header_of_user_and_password_is_masked_whole() -> None:
    header = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert mask(header, {SECRET, f"alice:{SECRET}"}) == "Basic ***"


def test_mask_then_cut_never_leaves_half_a_secret() -> None:
    text = "x" * 95 + SECRET + "y" * 50
    cut = mask_then_cut(text, 100, {SECRET})
    assert SECRET[:5] not in cut and cut.endswith("...")
    assert "***" in cut


def test_short_values_and_ordinary_text_are_left_alone() -> None:
    assert mask("a b ab", {"ab", "a"}) == "a b ab"


@pytest.mark.parametrize("name", ["Authorization", "X-Api-Key", "api_token", "Client-Secret", "X_PARTNER_KEY"])
def test_credential_header_names(name: str) -> None:
    assert is_credential_header(name)


def test_ordinary_header_names_are_not_credentials() -> None:
    assert not any(is_credential_header(n) for n in ("Accept", "User-Agent", "X-Request-Id"))


@pytest.mark.parametrize("url", [
    "postgresql://:pw123@db.example.com/app", "postgresql://u:pw123@db/app?sslmode=require",
    "postgresql://u@db/app?password=pw123", "mysql+pymysql://root:pw123@127.0.0.1:3306/x",
])
def test_database_urls_are_masked_in_every_form(url: str) -> None:
    shown = mask_url(url)
    assert "pw123" not in shown and ("***" in shown or "%2A%2A%2A" in shown), shown


def test_values_that_would_change_the_path_are_refused() -> None:
    assert segment("a/b?c#d", "id") == "a%2Fb%3Fc%23d"
    for bad in ("..", ".", ""):
        with pytest.raises(BadSegment, match="id"):
            segment(bad, "id")


def test_deep_json_is_a_value_error_not_a_recursion_error() -> None:
    with pytest.raises(ValueError):
        loads_json(b"[" * 100_000)


def test_origins_and_userinfo() -> None:
    assert origin_of("https://Api.Example.com/x?y=1") == "https://api.example.com:443"
    assert origin_of("http://alice:pw@127.0.0.1:8080/a") == "http://127.0.0.1:8080"
    assert strip_userinfo("http://alice:p%40w@h:1/a?b=c") == "http://h:1/a?b=c"
    assert parse_size("100MB") == 100_000_000 and parse_size("1KiB") == 1024


def web(**extra: object) -> WebSource:
    cfg = WebSourceConfig.model_validate({"name": "w", "kind": "web", "url": "http://list.example:8000/l?p={page}",
                                          "rows": "tr", "table": "t", "primary_key": ["id"],
                                          "fields": {"id": "td.id"}, **extra})
    return WebSource(cfg)


def test_web_detail_links_only_on_http_and_the_list_origin() -> None:
    src = web()
    assert src.config.pages.max == 10_000
    src.check_detail_link("http://list.example:8000/p/1")
    for bad, why in (("file:///etc/passwd", "not http"), ("javascript:alert(1)", "not http"),
                     ("http://other.example:8000/p/1", "allow_origins")):
        with pytest.raises(FetchError, match=why):
            src.check_detail_link(bad)
    web(allow_origins=["http://other.example:8000"]).check_detail_link("http://other.example:8000/p/1")


def test_scrub_userinfo_drops_the_password_of_every_url_in_a_text_and_nothing_else() -> None:
    text = ('{"url": "https://alice:p@ss@h.example:8080/x?y=1"} then http://bob@h/ · mailto:x@y.z · '
            'https://h/list?q=a@b · plain words with an @ in them')
    assert scrub_userinfo(text) == ('{"url": "https://h.example:8080/x?y=1"} then http://h/ · mailto:x@y.z · '
                                    'https://h/list?q=a@b · plain words with an @ in them')
    assert scrub_userinfo("") == ""
