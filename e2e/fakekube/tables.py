"""Server-side printing: ``meta.k8s.io/v1`` Tables for kubectl's default output.

kubectl asks for ``Accept: application/json;as=Table;…``; a custom resource's columns come from its
CRD's ``additionalPrinterColumns`` (evaluated with the JSONPath subset CRDs use: fields, ``[*]``,
``[N]`` and ``[?(@.key=="value")]`` filters), pods, workloads, Services, namespaces and PVCs get their usual
columns (``printers``), other types NAME and AGE. Date columns are shown as
ages, as the real server does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from . import printers
from .resources import ResourceType
from .store import JsonObj, meta

_TOKEN = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[\*\]|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]"
)
_NAME = {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
_AGE = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "Age",
    "priority": 0,
    "jsonPath": ".metadata.creationTimestamp",
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def jsonpath(obj: Any, path: str) -> list[Any]:
    """All values ``path`` selects in ``obj`` (the subset of JSONPath that printer columns use)."""
    values = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            return []
        pos = m.end()
        field, index, key, want = m.group(1), m.group(2), m.group(3), m.group(4)
        nxt: list[Any] = []
        for v in values:
            if field is not None and isinstance(v, dict) and field in v:
                nxt.append(v[field])
            elif m.group(0) == "[*]" and isinstance(v, list):
                nxt.extend(v)
            elif index is not None and isinstance(v, list) and int(index) < len(v):
                nxt.append(v[int(index)])
            elif key is not None and isinstance(v, list):
                nxt.extend(i for i in v if _first(i, "." + key) == want)
        values = nxt
    return values


def _first(obj: Any, path: str) -> str | None:
    found = jsonpath(obj, path)
    return str(found[0]) if found else None


def _age(timestamp: str) -> str:
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def columns(rt: ResourceType) -> list[JsonObj]:
    if rt.crd is None and (rt.group, rt.kind) in printers.BUILTIN:
        builtin = printers.BUILTIN[(rt.group, rt.kind)]
        return [
            _NAME,
            *(c for c in builtin if not c["priority"]),
            _AGE,
            *(c for c in builtin if c["priority"]),
        ]
    custom = [dict(c) for c in rt.printer_columns]
    for c in custom:
        c.setdefault("format", "")
        c.setdefault("priority", 0)
        c.setdefault("description", c["name"])
    return [_NAME, *(custom or [_AGE])]


def _cell(obj: JsonObj, column: JsonObj) -> Any:
    if column is _NAME:
        return meta(obj).get("name")
    if "compute" in column:
        return column["compute"](obj)
    values = jsonpath(obj, column["jsonPath"])
    if not values:
        return None
    if column["type"] == "date":
        return _age(str(values[0]))
    if len(values) == 1:
        return values[0]
    return ",".join(str(v) for v in values)


def table(rt: ResourceType, objs: list[JsonObj], resource_version: str) -> JsonObj:
    cols = columns(rt)
    rows = [
        {
            "cells": [_cell(o, c) for c in cols],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(o)},
        }
        for o in objs
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [{k: v for k, v in c.items() if k not in ("jsonPath", "compute")} for c in cols],
        "rows": rows,
    }
