"""Tenants: named credential sets, and sources (or pushes) that run once per tenant.

```yaml
tenants:
  acme:   {token: "${ACME_TOKEN}", event: 101}
  globex: {token: "${GLOBEX_TOKEN}", event: 202}
sources:
  - name: registrations
    kind: rest
    for_each_tenant: true          # one phase per tenant; `tenant` becomes a column and part of the key
    url: https://reg.example.com/events/{tenant.event}/participants
    auth: {type: bearer, token: "{tenant.token}"}
```

Every string of such a source may say `{tenant.KEY}` (a value of the tenant's set) or `{tenant}` (its name);
each tenant gets a copy of the source with its values filled in. The tenant's rows carry its name in
`tenant_column`, which joins the primary key, so tenants never overwrite (or, in full mode, delete) each other's
rows. Values that came from ${VAR}, and literal values under keys that name credentials, are secrets.
"""

from __future__ import annotations

import re
from typing import Any

_REF = re.compile(r"\{tenant(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
_CREDENTIAL = re.compile(r"token|secret|password|passwd|key|credential|auth", re.I)
TENANT_FIELD = "_tenant"  # what a per-tenant record carries its tenant's name as


def secret_values(tenants: dict[str, dict[str, Any]]) -> list[str]:
    return [str(v) for values in tenants.values() for k, v in values.items()
            if _CREDENTIAL.search(k) and isinstance(v, str) and v]


def prepare_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """Before validation: the tenant column joins the fields and the key (of the source, or of each stream)."""
    if not raw.get("for_each_tenant"):
        return raw
    col = raw.get("tenant_column", "tenant")
    if not isinstance(col, str):
        return raw
    out = dict(raw)
    if out.get("kind") == "push":
        key = out.get("key")
        key = [key] if isinstance(key, str) else key
        if isinstance(key, list) and col not in key:
            out["key"] = [col, *key]
        return out

    def add(holder: dict[str, Any]) -> dict[str, Any]:
        holder = dict(holder)
        fields = holder.get("fields")
        if isinstance(fields, dict) and col not in fields:
            holder["fields"] = {col: {"from": TENANT_FIELD}, **fields}
        pk = holder.get("primary_key")
        pk = [pk] if isinstance(pk, str) else pk
        if isinstance(pk, list) and col not in pk:
            holder["primary_key"] = [col, *pk]
        return holder

    if isinstance(out.get("streams"), list):
        out["streams"] = [add(st) if isinstance(st, dict) else st for st in out["streams"]]
    else:
        out = add(out)
    return out


def references(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str | None]]:
    """(where, key) of every {tenant...} placeholder in the raw source; key None for {tenant} (the name)."""
    out: list[tuple[tuple[str | int, ...], str | None]] = []
    if isinstance(data, str):
        out += [(path, m.group(1)) for m in _REF.finditer(data)]
    elif isinstance(data, dict):
        for k, v in data.items():
            out += references(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += references(v, (*path, i))
    return out


def check(raw: dict[str, Any], tenants: dict[str, dict[str, Any]]) -> tuple[tuple[str | int, ...], str] | None:
    """The first problem with a source's tenant use, as (where in the source, message); None when fine."""
    refs = references(raw)
    if not raw.get("for_each_tenant"):
        if refs:
            return refs[0][0], "{tenant...} placeholders need for_each_tenant: true"
        return None
    if not tenants:
        return ("for_each_tenant",), "for_each_tenant needs a top-level `tenants:` mapping"
    for where, key in refs:
        if key is None:
            continue
        lacking = [t for t, values in tenants.items() if key not in values]
        if lacking:
            return where, f"{{tenant.{key}}}: tenant {lacking[0]!r} has no {key!r}"
    return None


def _fill(data: Any, name: str, values: dict[str, Any]) -> Any:
    if isinstance(data, str):
        return _REF.sub(lambda m: name if m.group(1) is None else str(values[m.group(1)]), data)
    if isinstance(data, dict):
        return {k: _fill(v, name, values) for k, v in data.items()}
    if isinstance(data, list):
        return [_fill(v, name, values) for v in data]
    return data


def expand(cfg: Any) -> list[tuple[str | None, Any]]:
    """(tenant name, the source with that tenant's values) per tenant; [(None, cfg)] for an ordinary source."""
    if not getattr(cfg, "for_each_tenant", False):
        return [(None, cfg)]
    tenants: dict[str, dict[str, Any]] = cfg._tenants
    data = cfg.model_dump(by_alias=True, exclude_unset=True)
    out: list[tuple[str | None, Any]] = []
    for name, values in tenants.items():
        copy = type(cfg).model_validate(_fill(data, name, values))
        copy._secrets = cfg._secrets
        copy._tenants = tenants
        copy._tenant = name
        out.append((name, copy))
    return out
