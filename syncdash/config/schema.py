"""JSON Schema of the whole config, for editors' YAML completion (`syncdash schema`)."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import ConfigDict, Field, create_model

from syncdash.config.kinds import all_config_models


def json_schema() -> dict[str, Any]:
    models = tuple(all_config_models())
    source_union = Annotated[Union[models], Field(discriminator="kind")] if len(models) > 1 else models[0]  # noqa: UP007
    from syncdash.config.kinds import flow_config_model
    from syncdash.config.models import Config

    # the field types are built at run time (the registered kinds), hence a plain dict of definitions
    fields: dict[str, Any] = {
        "sources": (list.__class_getitem__(source_union), Field(default_factory=list)),
        "flows": (list.__class_getitem__(flow_config_model()), Field(default_factory=list)),
    }
    fields.update((name, (f.annotation, f)) for name, f in Config.model_fields.items()
                  if name not in ("sources", "flows"))
    root = create_model("SyncdashConfig", __config__=ConfigDict(extra="forbid"), **fields)
    schema = root.model_json_schema(by_alias=True)
    for definition in schema["$defs"].values():
        if "fields" in definition.get("properties", {}):
            _allow_shorthands(definition)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "syncdash config"
    return schema


def _allow_shorthands(source: dict[str, Any]) -> None:
    """The loader accepts `col: source_col` for a field and `primary_key: id` for a one-column key
    (see SourceConfig's before-validators); the generated schema would flag both, so add them."""
    props = source.get("properties", {})
    fields = props.get("fields")
    if fields and "anyOf" in fields:  # optional on a source with streams: dict | null
        fields = next((f for f in fields["anyOf"] if f.get("type") == "object"), None)
    if fields and "additionalProperties" in fields:
        spec = fields["additionalProperties"]
        fields["additionalProperties"] = {"anyOf": [{"type": "string"}, {"type": "integer"}, spec]}
    pk = props.get("primary_key")
    if pk and "anyOf" in pk:
        pk = next((p for p in pk["anyOf"] if p.get("type") == "array"), None)
    if pk and pk.get("type") == "array":
        array = {k: pk.pop(k) for k in ("type", "items", "minItems") if k in pk}
        pk["anyOf"] = [{"type": "string"}, array]
