"""Two local APIs for flows and pushes: a registration platform and a scoring system, one token per tenant.

The race-timing job syncdash replaces pulls participants from registration platforms, pushes them to a
scoring system and pulls results back. These servers play both sides, on the sample API's socket server
(keep-alive, request log, injected faults): the flow tests, the demo and the docs run against them.

RegistrationApi: GET /v1/events/{event}/participants?page=&per_page= -> {"participants": [...],
"meta": {"total": n}}, only the calling tenant's event.

ScoringApi: POST /v1/events/{event}/participants (one record or a JSON array; each {externalId, bib,
firstName, lastName}) -> 200 {"accepted": n}, or 422 {"message": ...} for the whole request when a record is
invalid (a bib in `reject_bibs`, or not a positive integer); DELETE .../participants/{externalId};
GET /v1/events/{event}/results -> {"results": [...]} of every participant received. An Idempotency-Key seen
before gets the first answer again without being applied twice (`replays` counts them).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import unquote

from syncdash_demo.sampleapi import HttpError, Response, SampleApi, bearer_token, dumps, int_param

_PARTICIPANTS = re.compile(r"/v1/events/([^/]+)/participants")
_PARTICIPANT = re.compile(r"/v1/events/([^/]+)/participants/([^/]+)")
_RESULTS = re.compile(r"/v1/events/([^/]+)/results")


class _TenantApi(SampleApi):
    """A sample API whose bearer token says which tenant calls, and which events that tenant owns."""

    def __init__(self, tenants: dict[str, tuple[str, str]], **kw: Any) -> None:
        """tenants: name -> (token, event id)."""
        super().__init__(records=[], **kw)
        self.tenants = dict(tenants)
        self.state_lock = threading.Lock()

    def _tenant(self, headers: dict[str, str], event: str) -> str:
        token = bearer_token(headers.get("authorization"))
        for name, (tok, ev) in self.tenants.items():
            if token is not None and token == tok:
                if ev != event:
                    raise HttpError(403, f"tenant {name} has no event {event}")
                return name
        raise HttpError(401, "unauthorized", [("WWW-Authenticate", 'Bearer realm="sampleflow"')])


class RegistrationApi(_TenantApi):
    def __init__(self, tenants: dict[str, tuple[str, str]], participants: dict[str, list[dict[str, Any]]],
                 **kw: Any) -> None:
        super().__init__(tenants, **kw)
        self.participants = {t: [dict(p) for p in ps] for t, ps in participants.items()}

    def set_participant(self, tenant: str, pid: int, **changes: Any) -> None:
        with self.state_lock:
            for p in self.participants[tenant]:
                if p["id"] == pid:
                    p.update(changes)
                    return
        raise KeyError(pid)

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        m = _PARTICIPANTS.fullmatch(path)
        if m is None:
            return super()._route(method, path, query, headers, body)
        self._method(method, "GET")
        tenant = self._tenant(headers, unquote(m.group(1)))
        page = int_param(query, "page", 1, 1)
        per = int_param(query, "per_page", 50, 1, 1000)
        with self.state_lock:
            rows = sorted(self.participants.get(tenant, []), key=lambda p: p["id"])
        chunk = rows[(page - 1) * per: page * per]
        return (200, [], dumps({"participants": chunk, "meta": {"total": len(rows), "page": page}}))


class ScoringApi(_TenantApi):
    def __init__(self, tenants: dict[str, tuple[str, str]], **kw: Any) -> None:
        super().__init__(tenants, **kw)
        self.received: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (tenant, event) -> externalId -> rec
        self.reject_bibs: set[int] = set()
        self.replays = 0
        self.applied = 0
        self._answers: dict[str, Response] = {}

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        if m := _PARTICIPANT.fullmatch(path):
            self._method(method, "DELETE")
            event, ext = unquote(m.group(1)), unquote(m.group(2))
            tenant = self._tenant(headers, event)
            with self.state_lock:
                gone = self.received.get((tenant, event), {}).pop(ext, None)
            if gone is None:
                raise HttpError(404, f"no participant {ext}")
            return (204, [], b"")
        if m := _PARTICIPANTS.fullmatch(path):
            self._method(method, "POST")
            event = unquote(m.group(1))
            tenant = self._tenant(headers, event)
            key = headers.get("idempotency-key")
            with self.state_lock:
                if key is not None and key in self._answers:
                    self.replays += 1
                    return self._answers[key]
            answer = self._accept(tenant, event, body)
            with self.state_lock:
                if key is not None:
                    self._answers[key] = answer
            return answer
        if m := _RESULTS.fullmatch(path):
            self._method(method, "GET")
            event = unquote(m.group(1))
            tenant = self._tenant(headers, event)
            with self.state_lock:
                people = sorted(self.received.get((tenant, event), {}).values(), key=lambda r: int(r["bib"]))
            results = [{"externalId": r["externalId"], "bib": r["bib"], "time_s": 1800 + (int(r["bib"]) * 37) % 900,
                        "name": f"{r.get('firstName', '')} {r.get('lastName', '')}".strip()} for r in people]
            return (200, [], dumps({"results": results}))
        return super()._route(method, path, query, headers, body)

    def _accept(self, tenant: str, event: str, body: bytes) -> Response:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise HttpError(400, "the body is not JSON") from None
        items = data if isinstance(data, list) else [data]
        for i, rec in enumerate(items):
            if not isinstance(rec, dict) or not rec.get("externalId"):
                raise HttpError(422, f"record {i}: externalId is required", index=i)
            bib = rec.get("bib")
            if not isinstance(bib, int) or isinstance(bib, bool) or bib <= 0 or bib in self.reject_bibs:
                raise HttpError(422, f"record {i}: bib {bib!r} is not a valid bib number", index=i)
        with self.state_lock:
            target = self.received.setdefault((tenant, event), {})
            for rec in items:
                target[str(rec["externalId"])] = rec
            self.applied += len(items)
        return (200, [], dumps({"accepted": len(items)}))


def demo_participants(tenant: str, event: str, n: int, base: int | None = None) -> list[dict[str, Any]]:
    """n participants of one tenant's event; ids from `base` (default 1000 for tenants named a..., else 2000),
    bibs from base // 10."""
    first = ("Aoife", "Brian", "Ciara", "Dara", "Eimear", "Fionn", "Grainne", "Hugh", "Isolde", "Jack")
    last = ("Byrne", "Kelly", "Walsh", "Ryan", "Doyle", "Nolan", "Quinn", "Burke")
    if base is None:
        base = 1000 if tenant.startswith("a") else 2000
    return [{"id": base + i, "event_id": event, "first_name": first[i % len(first)], "last_name": last[i % len(last)],
             "bib": base // 10 + i, "email": f"runner{base + i}@example.com"} for i in range(n)]
