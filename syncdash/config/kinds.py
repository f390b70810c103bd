"""The kind registry: kind name -> its config model and adapter factory, filled by the kinds themselves.

config never imports a kind. The built-in kinds declare themselves as entry points of the `syncdash.kinds`
group (pyproject.toml: `csv = "syncdash.kinds.csv:KIND"`); each kind package exposes a `KindSpec` named KIND
whose config model and adapter are loaded lazily, so discovery imports only the small package modules and
`syncdash schema`/`validate` stay fast. Entry points are read the first time a kind is looked up. A kind
outside the package (a plugin, or a test's) may instead call `register_kind(KindSpec(...))` once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncdash.errors import ConfigError

if TYPE_CHECKING:
    from syncdash.config.models import SourceConfig

ENTRY_POINT_GROUP = "syncdash.kinds"


@dataclass(frozen=True)
class KindSpec:
    """One source kind: what its `kind:` is called, how its config is validated and how it is read.

    `config` is the model class or a no-argument loader returning it (so the kind's heavy modules load only
    when a config names it); `adapter` builds the kind's `syncdash.kinds.contract.Source` from a validated
    config (config sits below kinds, so the type cannot be named here). `internal` kinds are declared
    elsewhere than `sources:` (flows) and are not offered as a source kind.
    """

    name: str
    config: type[SourceConfig] | Callable[[], type[SourceConfig]]
    adapter: Callable[[Any], Any]
    internal: bool = False

    def config_model(self) -> type[SourceConfig]:
        model = self.config
        return model if isinstance(model, type) else model()


_registry: dict[str, KindSpec] = {}
_discovered = False
_lock = threading.RLock()
_added: set[str] = set()  # names register_kind added (not the entry points): what unregister_kind may remove


def register_kind(spec: KindSpec) -> None:
    """Add a kind. Registering a name twice is an error unless it is the very same spec."""
    with _lock:
        _discover()
        _add(spec, origin="register_kind")
        _added.add(spec.name)


def unregister_kind(name: str) -> None:
    """Remove a kind `register_kind` added: a test's own kind once the test is done (so it does not leak
    into the tests after it), or an embedding application's before it registers a new version. Kinds that
    came from entry points (the built-in ones among them) are not removed."""
    with _lock:
        if name in _added:
            _added.discard(name)
            _registry.pop(name, None)


def _add(spec: KindSpec, origin: str) -> None:
    known = _registry.get(spec.name)
    if known is not None and known != spec:
        raise ConfigError(f"source kind {spec.name!r} is registered twice ({origin})")
    _registry[spec.name] = spec


def _discover() -> None:
    """Load the `syncdash.kinds` entry points once (the lock is held by the caller)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        if not isinstance(spec, KindSpec) or spec.name != ep.name:
            raise ConfigError(f"entry point {ep.name} = {ep.value!r} ({ENTRY_POINT_GROUP}) is not the KindSpec "
                              f"of a kind named {ep.name!r}")
        _add(spec, origin=f"entry point {ep.value}")


def _specs() -> dict[str, KindSpec]:
    with _lock:
        _discover()
        if not _registry:
            raise ConfigError(f"no source kinds are registered: the {ENTRY_POINT_GROUP} entry points are missing; "
                              "reinstall syncdash (`make install` or `pip install -e .`)")
        return _registry


def kind_spec(kind: str) -> KindSpec | None:
    return _specs().get(kind)


def known_kinds() -> list[str]:
    """The kinds a `sources:` entry may name."""
    return sorted(name for name, spec in _specs().items() if not spec.internal)


def config_model_for(kind: str) -> type[SourceConfig] | None:
    spec = _specs().get(kind)
    return spec.config_model() if spec is not None and not spec.internal else None


def flow_config_model() -> type[SourceConfig]:
    return _internal("flow").config_model()


def adapter_for(kind: str) -> Callable[[Any], Any]:
    """The factory building a kind's adapter (a `kinds.contract.Source`) from its validated config."""
    spec = _specs().get(kind)
    if spec is None:
        raise ConfigError(f"unknown source kind {kind!r}; known kinds: {', '.join(known_kinds())}")
    return spec.adapter


def all_config_models() -> list[type[SourceConfig]]:
    return [_specs()[k].config_model() for k in known_kinds()]


def _internal(kind: str) -> KindSpec:
    spec = _specs().get(kind)
    if spec is None:
        raise ConfigError(f"the built-in kind {kind!r} is not registered; reinstall syncdash")
    return spec
