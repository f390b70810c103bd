"""One masking function for every secret in every form it travels in.

A secret leaves syncdash's hands in more shapes than the one the user wrote: percent-encoded in a query
string (quote and quote_plus), base64 inside a basic-auth header (of `user:password`, or of the value alone at
any byte alignment), JSON-escaped in a body a server echoes back. `mask` replaces each of those forms.

Truncation: a secret cut in half by a preview or a length limit no longer matches any form, so callers
mask first and cut afterwards (`mask_then_cut`); the truncation sites say so where they cut.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 3  # shorter values are left: masking them would garble ordinary text
_MIN_FRAGMENT = 8  # a base64 fragment shorter than this could match by chance


def _b64_fragments(raw: bytes) -> set[str]:
    """The base64 characters that depend only on `raw`, at each of the three byte alignments it may sit at."""
    out = {base64.b64encode(raw).decode().rstrip("=")}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode().rstrip("=")
        start = 4 if k else 0  # the first group mixes in the bytes before the secret
        end = len(b"\0" * k + raw) // 3 * 4  # a last, partial group mixes in the bytes after it
        frag = enc[start:end]
        if len(frag) >= _MIN_FRAGMENT:
            out.add(frag)
    return {f for f in out if len(f) >= MIN_SECRET}


@lru_cache(maxsize=256)
def forms(secret: str) -> tuple[str, ...]:
    """Every form of one secret that `mask` replaces, longest first."""
    if len(secret) < MIN_SECRET:
        return ()
    found = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}
    found |= _b64_fragments(secret.encode())
    found |= {base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")}
    return tuple(sorted(found, key=len, reverse=True))


def mask(text: str, secrets: Iterable[str]) -> str:
    """text with every form of every secret replaced by ***, longest first (a secret inside another is
    replaced with it)."""
    if not text:
        return text
    all_forms = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
    for f in all_forms:
        if f in text:
            text = text.replace(f, MASK)
    return text


def mask_then_cut(text: str, limit: int, secrets: Iterable[str], more: str = "...") -> str:
    """Mask, then cut to `limit` characters: cutting first could leave half a secret that no form matches."""
    text = mask(text, secrets)
    return text if len(text) <= limit else text[:limit] + more


def basic_pair(username: str, password: str) -> str:
    """What a basic-auth header encodes: registered as a secret, its base64 is masked whole."""
    return f"{username}:{password}"


CREDENTIAL_HEADER_WORDS = ("authorization", "key", "token", "secret", "password", "cookie", "credential")


def is_credential_header(name: str) -> bool:
    """Header names that carry credentials (`Authorization`, `X-Api-Key`, `api_token`, `Client-Secret`...)."""
    low = name.lower().replace("_", "-")
    return any(w in low for w in CREDENTIAL_HEADER_WORDS)


# `scheme://user:password@` (or `scheme://user@`) inside free text: JSON checkpoints, error messages, page
# positions. The userinfo runs to the last `@` before the host's
# end (`/`, `?`, `#`, whitespace or a quote), as urlsplit reads it: a password may hold an unescaped `@`.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s\"'<>?#]+@")


def scrub_userinfo(text: str) -> str:
    """text with the `user:password@` of every URL in it removed: what a page URL, checkpoint or breaker key
    written before userinfo was stripped at the source still carries (and what display code strips again)."""
    if not text or "@" not in text:
        return text
    return _URL_USERINFO.sub(r"\1", text)
