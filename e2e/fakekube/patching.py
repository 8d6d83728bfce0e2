"""Patch algebra (pure functions over JSON values): merge, strategic merge, JSON patch, server-side apply.

Strategic merge is approximated: lists whose elements have a well-known merge key (containers by
``name``, conditions by ``type``, …) are merged element by element, ``$patch: delete`` removes an element
and the other ``$``-directives are honoured or dropped; every other list is replaced. Server-side apply
is approximated as "remove what this field manager applied last time and no longer applies, then merge
the applied configuration", with lists replaced atomically; there are no managedFields and no conflicts.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .errors import ApiError, bad_request

Json = Any

# The merge keys of the list fields the operator and kubectl touch (from the Kubernetes OpenAPI).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# `ports` is keyed by containerPort in containers and by port in services.
PORT_KEYS = ("containerPort", "port")


def merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7386 JSON merge patch: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _list_key(field: str, items: list[Json]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":
        for k in PORT_KEYS:
            if all(k in i for i in items):
                return k
        return None
    key = MERGE_KEYS.get(field)
    return key if key and all(key in i or i.get("$patch") for i in items) else None


def _strategic_list(field: str, target: list[Json], patch: list[Json]) -> list[Json]:
    key = _list_key(field, patch) or _list_key(field, target)
    if key is None:
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    result = [copy.deepcopy(i) for i in target]
    for item in patch:
        idx = next((n for n, cur in enumerate(result) if cur.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
        elif idx is None:
            result.append(strategic_merge({}, item))
        else:
            result[idx] = strategic_merge(result[idx], item)
    return result


def strategic_merge(target: Json, patch: Json) -> Json:
    """Strategic merge patch (approximation, see the module docstring)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_list(key, result[key], value)
        elif isinstance(value, list):
            result[key] = _strategic_list(key, [], value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def json_patch(target: Json, ops: Json) -> Json:
    """RFC 6902 JSON patch; a failed ``test`` answers 422, as kopf expects."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, ops, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
        ) from e
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {e}") from e


def _remove_dropped(target: Json, before: Json, now: Json) -> None:
    """Delete from ``target`` the fields present in ``before`` (last applied) but absent from ``now``."""
    if not (isinstance(target, dict) and isinstance(before, dict)):
        return
    now = now if isinstance(now, dict) else {}
    for key, value in before.items():
        if key not in now:
            target.pop(key, None)
        elif isinstance(value, dict):
            _remove_dropped(target.get(key), value, now[key])


def _apply_merge(target: Json, applied: Json) -> Json:
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(target)
    for key, value in applied.items():
        result[key] = _apply_merge(result.get(key), value)
    return result


def server_side_apply(current: Json, applied: Json, last_applied: Json | None) -> Json:
    """Server-side apply (approximation, see the module docstring)."""
    result = copy.deepcopy(current) if isinstance(current, dict) else {}
    if last_applied is not None:
        _remove_dropped(result, last_applied, applied)
    return _apply_merge(result, applied)
