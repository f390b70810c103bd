"""A push's dry run as the console shows it: the requests that would be sent, per tenant, as `syncdash run PUSH
--dry-run` prints them (method, URL, headers with credentials masked, body; the first 20 of each tenant and the
total), and the counts worded for a push ("would send", not "inserted": nothing lands in a table here).

Why a module of its own: the dry-run screen only lays text out; what a plan says is decided here, from the engine's
result (`RunResult.sample`, each preview carrying its `request`), never recomputed. No textual import, so it is
testable alone. Every string that reaches the screen goes through `redact` on top of the engine's own masking:
a ${VAR} value must never be drawn, whatever field it travelled in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

BODY_SHOWN = 2000  # characters of a body, as the CLI prints them


@dataclass
class TenantPlan:
    """The previews of one tenant ("" when the push is not per tenant) and how many requests it would send."""

    tenant: str
    total: int
    requests: list[dict[str, Any]] = field(default_factory=list)


def is_push_plan(sample: list[dict[str, Any]]) -> bool:
    return any(isinstance(s.get("request"), dict) for s in sample)


def by_tenant(sample: list[dict[str, Any]]) -> list[TenantPlan]:
    """The previews grouped per tenant, in the order the run sent them (the engine stamps each with its tenant's
    total, so "first 20 of 25" needs no count here)."""
    plans: dict[str, TenantPlan] = {}
    for s in sample:
        req = s.get("request")
        if not isinstance(req, dict):
            continue
        tenant = str(req.get("tenant") or "")
        plan = plans.get(tenant)
        if plan is None:
            plan = plans[tenant] = TenantPlan(tenant, int(req.get("total") or 0))
        plan.requests.append(s)
    for plan in plans.values():
        plan.total = max(plan.total, len(plan.requests))
    return list(plans.values())


def counts_text(c: Mapping[str, int], dry: bool = True) -> str:
    """A push's counts are records of requests: "would send 3 new, would update 1, would delete 0, ..."."""
    verb = ("would send", "would update", "would delete") if dry else ("sent", "updated", "deleted")
    return (f"{verb[0]} {c.get('inserted', 0)} new, {verb[1]} {c.get('updated', 0)}, {verb[2]} "
            f"{c.get('deleted', 0)}, {c.get('unchanged', 0)} unchanged, {c.get('failed', 0)} failed, "
            f"{c.get('skipped', 0)} skipped")


def heading(plan: TenantPlan) -> str:
    who = f" for tenant {plan.tenant}" if plan.tenant else ""
    return f"Requests that would be sent{who}: {plan.total} (first {len(plan.requests)} shown)"


def render(sample: list[dict[str, Any]], redact: Callable[[str], str]) -> Text:
    """Every tenant's heading, then each request: `n. change key=..., records`, `METHOD URL`, its headers one per
    line, and its body (cut at BODY_SHOWN characters). Plain Text, so nothing in a URL or body is read as markup."""
    out = Text()
    plans = by_tenant(sample)
    if not plans:
        out.append("No request would be sent: every row is as it was last sent.", style="dim")
        return out
    for t, plan in enumerate(plans):
        if t:
            out.append("\n\n")
        out.append(redact(heading(plan)), style="bold")
        for n, s in enumerate(plan.requests, 1):
            req = s["request"]
            out.append(f"\n{n:>3}. ")
            out.append(redact(f"{s.get('change')} key={s.get('key')}, {req.get('records', 1)} record(s)"),
                       style="dim")
            out.append("\n     ")
            out.append(f"{req.get('method', '?')} ", style="bold cyan")
            out.append(redact(str(req.get("url", ""))))
            for k, v in (req.get("headers") or {}).items():
                out.append("\n     ")
                out.append(redact(f"{k}: "), style="italic")
                out.append(redact(str(v)))
            if s.get("after") is not None:
                # masked before the cut: a secret across the cut would leave half of itself unmasked
                body = redact(json.dumps(s["after"], ensure_ascii=False, default=str))
                cut = "..." if len(body) > BODY_SHOWN else ""
                out.append("\n     " + body[:BODY_SHOWN] + cut, style="green")
    return out
