"""Find, read and validate a config file, turning every problem into file:line: key: reason."""

from __future__ import annotations

import hashlib
import os
import re
import typing
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ValidationError

from syncdash.common.suggest import did_you_mean
from syncdash.config import tenants
from syncdash.config.models import Config, KeyedValueError, SourceConfig, redact
from syncdash.config.yamlfile import LoadedYaml, Path_, load_yaml
from syncdash.errors import ConfigError, ConfigErrors

CONFIG_NAME = "syncdash.yaml"


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir("syncdash")) / CONFIG_NAME


def find_config_file(explicit: str | None = None) -> Path:
    """--config, then SYNCDASH_CONFIG, then ./syncdash.yaml, then the user config dir."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}", file=str(p))
        return p
    env = os.environ.get("SYNCDASH_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"config file named by SYNCDASH_CONFIG not found: {p}", file=str(p))
        return p
    for p in (Path.cwd() / CONFIG_NAME, user_config_file()):
        if p.is_file():
            return p
    raise ConfigError(
        f"no config file: pass --config, set SYNCDASH_CONFIG, or create ./{CONFIG_NAME} "
        f"(`syncdash init` writes a starter) or {user_config_file()}"
    )


def _loc_key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _redacted(errors: list[ConfigError], secrets: set[str]) -> ConfigErrors:
    """Config errors end up on stderr and in logs: no ${VAR} value may appear in them."""
    return ConfigErrors([ConfigError(redact(e.reason, secrets), file=e.file, line=e.line,
                                     key=redact(e.key, secrets) if e.key else None) for e in errors])


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (X, X | None, list[X], dict[str, X]); the first one found."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _known_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys a config mapping at `loc` (inside `model`) may have: what an unknown key is compared with."""
    for part in loc[:-1]:
        if model is None:
            return []
        if not isinstance(part, str):
            continue  # a list index or a dict key of a list/dict of models: the same model
        fld = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if fld is None:
            return []
        model = _model_in(fld.annotation)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _errors_from(e: ValidationError, prefix: Path_, y: LoadedYaml, file: str,
                 model: type[BaseModel] | None = None) -> list[ConfigError]:
    out: list[ConfigError] = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, KeyedValueError):
            loc = (*loc, *cause.loc)
        full = (*prefix, *loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + (did_you_mean(str(loc[-1]), _known_keys(model, loc)) if loc else "")
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        out.append(ConfigError(msg, file=file,
                               line=y.line_of(full), key=_loc_key(full) or None))
    return out


def parse_config(text: str, file: str, env: dict[str, str] | None = None) -> Config:
    from syncdash.config.kinds import config_model_for, known_kinds

    y = load_yaml(text, file, env)
    data = y.data
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping with a `sources:` list", file=file, line=1)
    errors: list[ConfigError] = []
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        errors.extend(_errors_from(e, (), y, file, Config))
        raise _redacted(errors, y.secrets) from None

    y.secrets.update(tenants.secret_values(cfg.tenants))
    if cfg.daemon.http is not None:
        y.secrets.update(cfg.daemon.http.secret_values())
    sources: list[SourceConfig] = []
    seen_names: dict[str, int] = {}
    seen_tables: dict[str, str] = {}
    for i, raw in enumerate(cfg.sources):
        if not isinstance(raw, dict):
            errors.append(ConfigError("each source must be a mapping", file=file, line=y.line_of(("sources", i)),
                                      key=f"sources.{i}"))
            continue
        kind = raw.get("kind")
        model = config_model_for(kind) if isinstance(kind, str) else None
        if model is None:
            at: Path_ = ("sources", i, "kind") if "kind" in raw else ("sources", i)
            errors.append(ConfigError(
                f"unknown source kind {kind!r}; known kinds: {', '.join(known_kinds())}" if kind is not None
                else f"required key is missing (one of: {', '.join(known_kinds())})",
                file=file, line=y.line_of(at), key=_loc_key(("sources", i, "kind"))))
            continue
        problem = tenants.check(raw, cfg.tenants)
        if problem is not None:
            where, msg = problem
            errors.append(ConfigError(msg, file=file, line=y.line_of(("sources", i, *where)),
                                      key=_loc_key(("sources", i, *where))))
            continue
        try:
            src = model.model_validate(tenants.prepare_raw(raw))
        except ValidationError as e:
            errors.extend(_errors_from(e, ("sources", i), y, file, model))
            continue
        if src.name in seen_names:
            errors.append(ConfigError(
                f"duplicate source name {src.name!r} (first defined at line {seen_names[src.name]})",
                file=file, line=y.line_of(("sources", i, "name")), key=f"sources.{i}.name"))
            continue
        seen_names[src.name] = y.line_of(("sources", i, "name")) or 0
        clash = False
        for table, tkey in src.target_tables():
            if table.lower() in seen_tables:
                errors.append(ConfigError(
                    f"table {table!r} is already the target of {seen_tables[table.lower()]}; "
                    "each table belongs to one source (full syncs delete what their source lacks)",
                    file=file, line=y.line_of(("sources", i, *tkey)), key=_loc_key(("sources", i, *tkey))))
                clash = True
            seen_tables[table.lower()] = f"source {src.name!r}"
        if clash:
            continue
        y.secrets.update(v for v in src.secret_values() if v)
        src._secrets = y.secrets
        src._tenants = cfg.tenants
        bind = getattr(src, "bind_config_file", None)
        if bind is not None:
            bind(Path(file))
        sources.append(src)
    _parse_flows(cfg, y, file, sources, seen_names, errors)
    if errors:
        raise _redacted(errors, y.secrets)
    cfg._sources = sources
    cfg._file = file
    cfg._secrets = y.secrets
    return cfg


def _parse_flows(cfg: Config, y: LoadedYaml, file: str, sources: list[SourceConfig], seen_names: dict[str, int],
                 errors: list[ConfigError]) -> None:
    """Flows share the sources' namespace (they are queued, scheduled and shown like sources); their steps must
    name sources of this file, not other flows."""
    if not cfg.flows:
        return  # the flow kind's config model (a pydantic model built at import) loads only for flows
    from syncdash.config.kinds import flow_config_model

    model = flow_config_model()
    steps_ok = {s.name for s in sources}
    for i, raw in enumerate(cfg.flows):
        where = ("flows", i)
        if not isinstance(raw, dict):
            errors.append(ConfigError("each flow must be a mapping", file=file, line=y.line_of(where),
                                      key=_loc_key(where)))
            continue
        if "kind" in raw:
            errors.append(ConfigError("unknown key", file=file, line=y.line_of((*where, "kind")),
                                      key=_loc_key((*where, "kind"))))
            continue
        try:
            flow = model.model_validate({**raw, "kind": "flow"})
        except ValidationError as e:
            errors.extend(_errors_from(e, where, y, file, model))
            continue
        if flow.name in seen_names:
            errors.append(ConfigError(
                f"duplicate name {flow.name!r} (first defined at line {seen_names[flow.name]}); flows and sources "
                "share one namespace", file=file, line=y.line_of((*where, "name")), key=_loc_key((*where, "name"))))
            continue
        steps = flow.step_names()
        bad = [j for j, step in enumerate(steps) if step not in steps_ok]
        if bad:
            j = bad[0]
            known = ", ".join(sorted(steps_ok)) or "none"
            errors.append(ConfigError(
                f"step {steps[j]!r} is not a source of this file (steps are sources and pushes; known: {known})",
                file=file, line=y.line_of((*where, "steps", j)), key=_loc_key((*where, "steps", j))))
            continue
        seen_names[flow.name] = y.line_of((*where, "name")) or 0
        flow._secrets = y.secrets
        sources.append(flow)


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Config:
    p = find_config_file(str(path) if path is not None else None)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config: {e}", file=str(p)) from None
    cfg = parse_config(text, str(p), env)
    # no `database:`: a store of this config's own, so two projects never share run history or state
    cfg.database = _resolve_sqlite(cfg.database, p) or project_store_url(p)
    cfg.target = _resolve_sqlite(cfg.target, p)
    for src in cfg.source_list:
        src.target = _resolve_sqlite(src.target, p)
    return cfg


def project_store_url(config_file: Path) -> str:
    """The store of a config without `database:`: one SQLite file per config file, under the user data dir, named
    for the config's absolute path (a readable slug of its folder and name, and a hash that keeps two folders of
    the same name apart). A shared default store let a second project's first run compare against the first
    project's table and report "unchanged"."""
    path = config_file.resolve()
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{path.parent.name}-{path.stem}".lower()).strip("-")[:48] or "config"
    stores = Path(platformdirs.user_data_dir("syncdash")) / "stores"
    return f"sqlite:///{stores / f'{slug}-{digest}.db'}"


def is_project_store(cfg: Config) -> bool:
    """True when the config names no `database:` and uses the store load_config chose for its file."""
    return cfg.file is not None and cfg.database == project_store_url(Path(cfg.file))


def _resolve_sqlite(url: str | None, config_file: Path) -> str | None:
    """sqlite:///relative.db is relative to the config file, like every other path in it."""
    if url is None or not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    rel = url[len("sqlite:///"):]
    if not rel or rel == ":memory:":
        return url
    return "sqlite:///" + str((config_file.parent / rel).resolve())
