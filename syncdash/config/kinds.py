"""Kind name -> (config model, adapter). Adding a kind: one module and one line here."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncdash.config.models import SourceConfig

# kind: "module:ConfigClass:AdapterClass"; imported lazily so `syncdash schema` stays fast
_KINDS: dict[str, str] = {
    "csv": "syncdash.kinds.csv.source:CsvSourceConfig:CsvSource",
    "rest": "syncdash.kinds.rest:RestSourceConfig:RestSource",
    "push": "syncdash.kinds.push:PushConfig:PushTarget",
    "web": "syncdash.kinds.web:WebSourceConfig:WebSource",
}
# kinds the config declares elsewhere than `sources:` (flows: ...)
_INTERNAL: dict[str, str] = {"flow": "syncdash.kinds.flow.config:FlowConfig:FlowAdapter"}


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def _load(kind: str, idx: int) -> Any:
    mod, *names = (_KINDS.get(kind) or _INTERNAL[kind]).split(":")
    return getattr(import_module(mod), names[idx])


def config_model_for(kind: str) -> type[SourceConfig] | None:
    return _load(kind, 0) if kind in _KINDS else None


def flow_config_model() -> Any:
    return _load("flow", 0)


def adapter_for(kind: str) -> Any:
    return _load(kind, 1)


def all_config_models() -> list[type[SourceConfig]]:
    return [_load(k, 0) for k in known_kinds()]
