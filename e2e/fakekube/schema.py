"""Defaulting and pruning of custom resources by their CRD's structural schema (pure functions).

As in the real API server: ``default:`` values fill missing fields (recursively, also inside the
defaults themselves), and fields the schema does not declare are dropped unless a parent says
``x-kubernetes-preserve-unknown-fields: true``. ``apiVersion``, ``kind`` and ``metadata`` at the root
and in ``x-kubernetes-embedded-resource`` objects are never pruned. Validation (``validate``) covers types,
enums, required fields and the numeric, length, pattern and item-count bounds; not CEL, not formats.
"""

from __future__ import annotations

import copy
import re
from typing import Any

JsonObj = dict[str, Any]
_ALWAYS_KEPT = ("apiVersion", "kind", "metadata")


def default_and_prune(value: Any, schema: JsonObj | None, *, root: bool = False) -> Any:
    """A copy of ``value`` with defaults applied and unknown fields pruned."""
    if schema is None:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return _object(value, schema, keep_meta=root or bool(schema.get("x-kubernetes-embedded-resource")))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default_and_prune(v, schema["items"]) for v in value]
    return copy.deepcopy(value)


def _object(value: JsonObj, schema: JsonObj, *, keep_meta: bool) -> JsonObj:
    props: JsonObj = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    out: JsonObj = {}
    for key, sub in value.items():
        if key in props:
            out[key] = default_and_prune(sub, props[key])
        elif isinstance(additional, dict):
            out[key] = default_and_prune(sub, additional)
        elif additional is True or preserve or (keep_meta and key in _ALWAYS_KEPT):
            out[key] = copy.deepcopy(sub)
    for key, sub_schema in props.items():
        if key not in out and "default" in sub_schema:
            out[key] = default_and_prune(copy.deepcopy(sub_schema["default"]), sub_schema)
    return out


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _bounds(value: Any, schema: JsonObj, path: str) -> list[str]:
    """minimum/maximum, minLength/maxLength/pattern, minItems/maxItems, as the API server checks them."""
    out = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(
                f"{path}: Invalid value: {value}: should be greater than or equal to {schema['minimum']}"
            )
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: Invalid value: {value}: should be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{path}: Invalid value: should be at least {schema['minLength']} chars long")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            out.append(f"{path}: Invalid value: {value!r}: should match '{schema['pattern']}'")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{path}: Invalid value: must have at least {schema['minItems']} items")
    return out


def validate(value: Any, schema: JsonObj | None, path: str = "") -> list[str]:
    """Basic validation (type, enum, required); returns error messages in the API server's style."""
    if schema is None or value is None:
        return []
    errors: list[str] = []
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        expected = None
        if not isinstance(value, int | str):
            errors.append(f"{path or '<root>'}: Invalid value: must be an integer or a string")
    if expected in _TYPES:
        ok = isinstance(value, _TYPES[expected]) and not (expected != "boolean" and isinstance(value, bool))
        if not ok:
            errors.append(f"{path or '<root>'}: Invalid value: must be of type {expected}")
            return errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: Unsupported value: {value!r}")
    errors.extend(_bounds(value, schema, path or "<root>"))
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                errors.append(f"{path}.{req}: Required value".lstrip("."))
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, sub in value.items():
            if key in props and key != "metadata":
                errors.extend(validate(sub, props[key], f"{path}.{key}".lstrip(".")))
            elif key not in props and isinstance(additional, dict):
                errors.extend(validate(sub, additional, f"{path}.{key}".lstrip(".")))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors.extend(validate(item, schema["items"], f"{path}[{i}]"))
    return errors


_IMMUTABLE_RULES = ("self == oldSelf", "self==oldSelf", "oldSelf == self")


def immutability(old: Any, new: Any, schema: JsonObj | None, path: str = "") -> list[str]:
    """The one CEL transition rule honoured: ``self == oldSelf`` on a field present before and after.

    Other ``x-kubernetes-validations`` rules are not evaluated (no CEL engine here).
    """
    if schema is None or old is None or new is None:
        return []
    errors = [
        f"{path or '<root>'}: Invalid value: {rule.get('message') or 'field is immutable'}"
        for rule in schema.get("x-kubernetes-validations") or []
        if rule.get("rule", "").strip() in _IMMUTABLE_RULES and old != new
    ]
    if isinstance(old, dict) and isinstance(new, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key != "metadata":
                errors.extend(immutability(old.get(key), new.get(key), sub, f"{path}.{key}".lstrip(".")))
    return errors
