"""The JSON Schema of a config file, built from the registries (for editors)."""

from __future__ import annotations

from typing import Any

from dlrun.config import catalog
from dlrun.config import registry as R
from dlrun.config.resolve import RunConfig


def _variants(registry: R.Registry, key: str) -> dict[str, Any]:
    options = []
    for name, comp in registry.items():
        cfg = getattr(comp, "Config", None)
        schema = cfg.model_json_schema() if cfg is not None else {"type": "object"}
        schema.setdefault("properties", {})[key] = {"const": name}
        schema["required"] = sorted({*schema.get("required", []), key})
        schema["title"] = name
        schema["description"] = R.Registry.describe(comp)
        options.append(schema)
    return {"oneOf": options}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file: every section, every registered component."""
    catalog.load()
    schema = RunConfig.model_json_schema()
    props = schema["properties"]
    props["data"] = _variants(R.datasets, "name")
    model = _variants(R.models, "type")
    for option in model["oneOf"]:
        if "layers" in option.get("properties", {}):
            option["properties"]["layers"] = {"type": "array", "items": _variants(R.layers, "type")}
    props["model"] = model
    props["loss"] = {"enum": R.losses.names(), "description": "loss function"}
    props["optimizer"] = _variants(R.optimizers, "name")
    props["schedule"] = _variants(R.schedules, "name")
    props["regularizers"] = {"type": "array", "items": _variants(R.regularizers, "name")}
    props["extends"] = {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "config file(s) this one extends (relative paths)",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dlrun config"
    return schema
