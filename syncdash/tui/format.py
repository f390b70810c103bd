"""Text helpers shared by the console's widgets (ages, durations, rates, counts)."""

from __future__ import annotations

import re

from syncdash.common.humanize import age, unit_of, until  # noqa: F401  (the console's names for age and until)

_ARTIFACTS = re.compile(r"screenshot (\S+?), html (\S+?)(?=[\s;)]|$)")


def artifact_paths(text: str | None) -> list[str]:
    """The screenshot and HTML a web source saved for a page that never rendered, as its error names them."""
    m = _ARTIFACTS.search(text or "")
    return [m.group(1), m.group(2)] if m else []

HEALTH_STYLE = {"healthy": "green", "overdue": "yellow", "failing": "red", "paused": "magenta", "running": "cyan",
                "never run": "dim"}
STATUS_STYLE = {"succeeded": "green", "partial": "yellow", "failed": "red", "cancelled": "magenta",
                "interrupted": "red", "running": "cyan", "queued": "blue", "claimed": "cyan"}


def seconds(secs: float | None) -> str:
    if secs is None:
        return "-"
    if secs < 1:  # a 0.4 s run reads "400ms", not "0.4s" beside "0.0s" for a 30 ms phase
        return f"{secs * 1000:.0f}ms"
    if secs < 60:
        return f"{secs:.1f}s"
    if secs < 3600:
        return f"{int(secs // 60)}m{int(secs % 60):02d}s"
    return f"{int(secs // 3600)}h{int(secs % 3600 // 60):02d}m"


def number(n: float | int | None) -> str:
    if n is None:
        return "-"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,.0f}"


def rate(per_second: float) -> str:
    """Fast phases per second, slow ones (a rate-limited API) per minute: never a bare 0/s."""
    if per_second >= 10:
        return f"{number(per_second)}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def counts(c: dict[str, int]) -> str:
    return (f"[green]+{c['inserted']}[/] [yellow]~{c['updated']}[/] ={c['unchanged']} [magenta]-{c['deleted']}[/] "
            f"[red]!{c['failed']}[/]")


COUNTS_LEGEND = ("[green]+[/] inserted  [yellow]~[/] updated  = unchanged  [magenta]-[/] deleted  "
                 "[red]![/] failed")


def checkpoint(text: str | None) -> str:
    """A run's checkpoint as `name: value` lines (nested objects flattened to dotted names), not wrapped JSON;
    text that is not a JSON object is shown as it is. A URL's `user:password@` is dropped first: today's code
    never stores one, and revision 0004 removed those of earlier releases; this keeps a copied-in store honest.
    """
    import json

    from syncdash.common.secrets import scrub_userinfo

    if not text:
        return "none"
    text = scrub_userinfo(text)
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if not isinstance(value, dict):
        return text
    out: list[str] = []

    def walk(prefix: str, v: object) -> None:
        if isinstance(v, dict) and v:
            for k, sub in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), sub)
        else:
            out.append(f"{prefix}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}")

    walk("", value)
    return "  ·  ".join(out)


def styled(text: str, style: str) -> str:
    return f"[{style}]{text}[/]" if style else text


def progress(done: int, total: int | None, unit: str) -> str:
    """A phase's position: `12/40 pages` (the unit follows the total: `1/1 page`), or `12 rows` with no total."""
    if total is not None:
        return f"{number(done)}/{number(total)} {unit_of(total, unit)}"
    return f"{number(done)} {unit_of(done, unit)}"
