"""Operator settings, read once from ``RESTATE_OPERATOR_*`` environment variables.

Everything that differs between a real cluster and the end-to-end test bed (cluster DNS suffix, how the
operator reaches a RestateCluster's admin API, how a Restate server reaches a deployment version) is a
template here, so the handlers never hard-code an address.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

_PREFIX = "RESTATE_OPERATOR_"


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorSettings:
    """Knobs of the operator; each field maps to ``RESTATE_OPERATOR_<FIELD NAME UPPERCASED>``."""

    cluster_dns: str = "cluster.local"
    """DNS suffix of the Kubernetes cluster (``RESTATE_OPERATOR_CLUSTER_DNS``)."""

    admin_url_template: str = "http://restate.{cluster}.svc.{dns}:9070"
    """URL of a RestateCluster's admin API. Placeholders: ``{cluster}`` (the RestateCluster name, which is
    also its namespace), ``{namespace}``, ``{dns}``, and ``{pod_ip}`` (the IP of pod ``restate-0``, looked
    up only when the template uses it)."""

    service_url_template: str = "http://{name}.{namespace}.svc.{dns}:{port}"
    """URL under which a Restate server reaches one deployment version; ``servicePath`` is appended.
    Placeholders: ``{name}`` (the versioned Service name ``<rsd>-<hash>``), ``{namespace}``, ``{dns}``,
    ``{port}`` (9080 unless the container names a port ``restate``), ``{hash}``, ``{deployment}`` (the
    RestateDeployment name) and ``{pod_ip}`` (the IP of a ready pod of that version)."""

    advertised_address_template: str = "http://$(POD_NAME).restate-cluster.$(POD_NAMESPACE).svc.{dns}:5122"
    """Value of ``RESTATE_ADVERTISED_ADDRESS`` in the server pods; ``$(VAR)`` is expanded by the kubelet
    (``POD_NAME``, ``POD_NAMESPACE`` and ``POD_IP`` are always defined), ``{dns}`` by the operator."""

    server_command: str = "restate-py-server"
    """Command of the server container when the RestateCluster does not set ``compute.command``."""

    field_manager: str = "restate-operator"
    """Field manager name used for server-side apply."""

    operator_namespace: str = "restate-operator"
    """Namespace the operator runs in; NetworkPolicies let it reach the admin API from there."""

    resync_seconds: float = 10.0
    """Interval of the level-based timers that compare actual with desired state (seconds)."""

    admin_timeout_seconds: float = 10.0
    """Timeout of one admin API request (seconds)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Build settings from ``env`` (default: the process environment); unset variables keep defaults."""
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = source.get(_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = float(raw) if field.type == "float" else raw
        return cls(**values)  # type: ignore[arg-type]


SETTINGS = OperatorSettings.from_env()
"""Process-wide settings; read at import so kopf's decorators can use the timer intervals."""
