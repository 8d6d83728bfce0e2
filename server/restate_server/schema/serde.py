"""The stored form of the schema: one JSON document holding every deployment and its services.

The registry keeps it under one metadata-store key, so a change is a single compare-and-set. The
format is this project's own (upstream stores flexbuffers); it carries a ``format`` number so that a
later layout can read this one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from restate_server.schema import model

FORMAT = 1


def _plain(value: Any) -> Any:
    """Dataclasses, mappings and enums as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _handler(doc: dict[str, Any]) -> model.Handler:
    return model.Handler(
        **{
            **doc,
            "ty": None if doc["ty"] is None else model.HandlerType(doc["ty"]),
            "input": model.InputRules(**doc["input"]),
            "output": model.OutputRules(**doc["output"]),
            "metadata": _frozen(doc["metadata"]),
            "retry_policy": model.RetryPolicy(**doc["retry_policy"]),
        }
    )


def _service(doc: dict[str, Any]) -> model.Service:
    return model.Service(
        **{
            **doc,
            "ty": model.ServiceType(doc["ty"]),
            "handlers": _frozen({name: _handler(h) for name, h in doc["handlers"].items()}),
            "metadata": _frozen(doc["metadata"]),
            "retry_policy": model.RetryPolicy(**doc["retry_policy"]),
        }
    )


def _deployment(doc: dict[str, Any]) -> model.Deployment:
    return model.Deployment(
        **{
            **doc,
            "protocol_type": model.ProtocolType(doc["protocol_type"]),
            "additional_headers": _frozen(doc["additional_headers"]),
            "metadata": _frozen(doc["metadata"]),
            "services": _frozen({name: _service(s) for name, s in doc["services"].items()}),
        }
    )


def dump(deployments: Mapping[str, model.Deployment]) -> dict[str, Any]:
    """The stored document of a set of deployments (insertion order kept)."""
    return {"format": FORMAT, "deployments": [_plain(d) for d in deployments.values()]}


def load(doc: Mapping[str, Any]) -> dict[str, model.Deployment]:
    """Inverse of :func:`dump`."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"unsupported schema document format {doc.get('format')!r}")
    return {d["id"]: _deployment(d) for d in doc["deployments"]}
