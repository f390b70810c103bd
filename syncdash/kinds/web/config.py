"""The `kind: web` contract: which pages to open, what marks them rendered, and where each field sits.

A field is a CSS selector inside a row (or inside a detail page), read as text or as an attribute, optionally
cut down by a regex, then typed like every other source's fields. Everything a user can get wrong (a bad
selector shape, a regex that does not compile, a URL without {page} and without `next`) is refused here
with the key that holds it, before a browser starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, PrivateAttr, WithJsonSchema, field_validator, model_validator

from syncdash.config.models import (
    Duration,
    FieldSpec,
    KeyedValueError,
    SourceConfig,
    Strict,
    duration_validator,
    named_fields,
)
from syncdash.kinds.rest.config import (
    CircuitBreaker,
    RateLimit,
    RetryPolicy,
    check_origins,
    strip_userinfo,
    userinfo_secrets,
)

ABSOLUTE_ATTRS = ("href", "src", "action", "data-href", "data-url")
ResourceType = Literal["image", "font", "media", "stylesheet"]
_BLOCKED: tuple[ResourceType, ...] = ("image", "font", "media")


class WebField(FieldSpec):
    """A column read off the page: `selector` inside the row (none: the row element itself), text or `attr`."""

    selector: str | None = Field(default=None, description="CSS selector inside the row (detail: inside the page)")
    attr: str | None = Field(default=None, description="Read this attribute instead of the text; href/src are "
                                                      "made absolute")
    regex: str | None = Field(default=None, description="Keep the first group (or the whole match) of this regex")

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"regex {v!r} does not compile: {e}") from None
        return v

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("selector is empty")
        return v


def _selector_shorthand(name: str, spec: Any) -> Any:
    """`name: "td.name"` is short for `{selector: "td.name"}` (a web field's source is a selector)."""
    if isinstance(spec, str):
        return {"selector": spec}
    if not isinstance(spec, dict | WebField):
        raise KeyedValueError(f"field {name}: give a CSS selector, or a mapping with selector/attr/regex/type/"
                              f"required/default/format (got {type(spec).__name__})", name)
    if isinstance(spec, dict) and "from" in spec:
        raise KeyedValueError(f"field {name}: web fields are read with selector: (and attr:), not from:", name,
                              "from")
    return spec


def _web_fields(v: Any) -> Any:
    return named_fields(v, _selector_shorthand)


class PageRange(Strict):
    start: int = Field(default=1, ge=0, description="First value of {page}")
    max: int | None = Field(default=10_000, ge=1, description="Pages read at most (a safety stop; null: no limit)")
    end: str | None = Field(default=None, description="Selector that means there are no more rows (e.g. .empty); "
                                                      "a 404 or a page without rows ends the walk too")


class DetailPages(Strict):
    """Follow one link per row and read more fields off the page it leads to."""

    url_field: str = Field(description="The list field holding the link (usually a selector with attr: href)")
    wait_for: str | None = Field(default=None, description="Selector that means the detail page is rendered")
    fields: dict[str, WebField] = Field(min_length=1)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> Any:
        return _web_fields(v)


class BrowserSettings(Strict):
    executable: str | None = Field(default=None, description="Chromium or Chrome to launch (default: "
                                                             "SYNCDASH_CHROMIUM, then chromium on PATH, then "
                                                             "Playwright's own browsers)")
    headless: bool = True
    timeout: Duration = Field(default=30.0, description="Navigation and wait_for timeout per page")
    args: list[str] = Field(default_factory=list, description="Extra Chromium command-line switches")
    user_agent: str | None = None
    block: list[ResourceType] = Field(
        default_factory=lambda: list(_BLOCKED),
        description="Resource types not downloaded (faster; the DOM is the same)")

    _d = duration_validator("timeout")


class WebSourceConfig(SourceConfig):
    kind: Literal["web"]
    url: str = Field(description="List page URL; {page} is replaced by the page number (or give `next`)")
    pages: PageRange = Field(default_factory=PageRange)
    wait_for: str | None = Field(default=None, description="Selector that means the page is rendered "
                                                           "(default: rows)")
    rows: str = Field(description="Selector of one record's element (a table row, a card)")
    next: str | None = Field(default=None, description="Selector of the element to click for the next page")
    fields: dict[str, WebField] = Field(min_length=1)  # type: ignore[assignment]
    detail: DetailPages | None = None
    browser: BrowserSettings = Field(default_factory=BrowserSettings)
    concurrency: int = Field(default=1, ge=1, le=16, description="Pages open at once (each its own browser "
                                                                 "context): list pages with {page}, and detail "
                                                                 "pages")
    rate_limit: Annotated[RateLimit | None, WithJsonSchema({"anyOf": [
        {"type": "string", "description": "e.g. 10/minute"}, {"type": "object"}, {"type": "null"}]})] = None
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy(attempts=3, initial=1.0, max=30.0))
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    allow_origins: list[str] = Field(
        default_factory=list, description="Other origins (scheme://host[:port]) whose detail links are followed; "
                                          "by default only links on the list page's own origin are")

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return check_origins(v)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> Any:
        return _web_fields(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v.replace("{page}", "1"))
        if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.scheme == "file"):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    _detail_names: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _merge_detail(cls, v: Any, handler: Any) -> Any:
        """Detail fields are columns of the same table: the mapper and the target see one field set."""
        names: list[str] = []
        if isinstance(v, dict) and isinstance(v.get("detail"), dict):
            own = _web_fields(v.get("fields")) if isinstance(v.get("fields"), dict) else None
            extra = _web_fields(v["detail"].get("fields")) if isinstance(v["detail"].get("fields"), dict) else None
            if own is not None and extra is not None:
                clash = [k for k in extra if k in own and own[k] != extra[k]]  # equal: merged already (a copy)
                if clash:
                    raise KeyedValueError(f"detail field {clash[0]} is also a list field; name it differently",
                                          "detail", "fields", clash[0])
                v = {**v, "fields": {**own, **extra}}
                names = list(extra)
        out = handler(v)
        if isinstance(out, WebSourceConfig):
            out._detail_names = names
        return out

    @model_validator(mode="after")
    def _pagination(self) -> WebSourceConfig:
        has_page = "{page}" in self.url
        if has_page and self.next:
            raise KeyedValueError("give either {page} in url or next:, not both", "next")
        if "{" in self.url.replace("{page}", ""):
            raise KeyedValueError("url: the only placeholder is {page}", "url")
        if self.detail is not None and self.detail.url_field not in self.fields:
            raise KeyedValueError(f"url_field {self.detail.url_field!r} is not a list field; fields are: "
                                  f"{', '.join(self.list_fields)}", "detail", "url_field")
        if self.detail is not None and self.detail.url_field in self.detail_names:
            raise KeyedValueError("url_field must be a list field (read on the list page)", "detail", "url_field")
        return self

    @property
    def list_fields(self) -> dict[str, WebField]:
        return {k: f for k, f in self.fields.items() if k not in self._detail_names}

    @property
    def detail_names(self) -> list[str]:
        return self._detail_names

    @property
    def paged(self) -> bool:
        return "{page}" in self.url

    @property
    def plain_url(self) -> str:
        """`url` without its `user:password@`: every page URL, checkpoint, breaker key and message is built from
        this one, so the password is never navigated to, stored or shown (Chromium gets it as credentials)."""
        return strip_userinfo(self.url)

    def page_url(self, n: int) -> str:
        return self.plain_url.replace("{page}", str(n))

    def http_credentials(self) -> dict[str, str] | None:
        """The url's userinfo as Playwright's `http_credentials`: answered to a basic-auth challenge of the list
        page's own origin only (a detail page elsewhere, even an allowed one, never gets them)."""
        parts = urlsplit(self.url.replace("{page}", "1"))
        if parts.username is None or not parts.hostname:
            return None
        scheme = parts.scheme.lower()
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port and parts.port != {"http": 80, "https": 443}.get(scheme) else ""
        return {"username": unquote(parts.username), "password": unquote(parts.password or ""),
                "origin": f"{scheme}://{host}{port}"}  # as a browser writes an origin: no default port

    def secret_values(self) -> list[str]:
        """The url's password (as written and decoded, and `user:password`, whose base64 a basic header
        carries): masked like a ${VAR} value wherever it might travel."""
        return userinfo_secrets([self.url])

    def source_name_of(self, column: str) -> str | int:
        spec = self.fields[column]
        sel = getattr(spec, "selector", None) or "(row)"
        return f"{sel}@{spec.attr}" if getattr(spec, "attr", None) else sel
