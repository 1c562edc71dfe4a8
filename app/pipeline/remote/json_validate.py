"""Validate structured replies against a JSON schema.

Uses ``jsonschema`` when it is installed; otherwise a small validator for the subset the
CARE prompts use (type, properties, required, additionalProperties, items, enum, const,
min/maxItems, min/maxLength, minimum/maximum, anyOf). An unsupported keyword raises
instead of being silently ignored, so a schema never validates less than it claims.
"""
from __future__ import annotations

from typing import Any

try:  # optional dependency
    import jsonschema as _jsonschema  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _jsonschema = None

VALIDATOR_NAME = "jsonschema" if _jsonschema is not None else "builtin-subset"

_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment", "strict"}
_SUPPORTED = _ANNOTATIONS | {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "anyOf",
}
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


class SchemaError(ValueError):
    """The schema itself uses something this validator cannot check."""


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name not in _TYPES:
        raise SchemaError(f"unknown type {name!r}")
    return isinstance(value, _TYPES[name])


def _check(value: Any, schema: dict[str, Any], where: str) -> str | None:
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise SchemaError(f"unsupported schema keyword(s) {sorted(unknown)} at {where}")
    if "anyOf" in schema:
        errors = [_check(value, sub, where) for sub in schema["anyOf"]]
        if all(errors):
            return f"{where}: matches none of anyOf ({errors[0]})"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return f"{where}: expected {'/'.join(types)}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} not one of {schema['enum']}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: {value!r} is not {schema['const']!r}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{where}: string shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{where}: string longer than {schema['maxLength']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: {value} > maximum {schema['maximum']}"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where}: fewer than {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where}: more than {schema['maxItems']} items"
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                err = _check(item, schema["items"], f"{where}[{i}]")
                if err:
                    return err
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                return f"{where}: missing required property {key!r}"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                err = _check(item, props[key], f"{where}.{key}")
                if err:
                    return err
            elif extra is False:
                return f"{where}: unexpected property {key!r}"
            elif isinstance(extra, dict):
                err = _check(item, extra, f"{where}.{key}")
                if err:
                    return err
    return None


def validation_error(value: Any, schema: dict[str, Any]) -> str | None:
    """None if ``value`` satisfies ``schema``, else a one-line reason."""
    if _jsonschema is not None:
        validator_cls = _jsonschema.validators.validator_for(schema)
        err = _jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
        if err is None:
            return None
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        return f"{path}: {err.message}"
    return _check(value, schema, "$")
