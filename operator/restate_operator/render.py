"""Pure rendering: typed specs in, Kubernetes manifests (plain dicts) out.

Nothing here talks to the API server or the clock, so every object the operator creates can be unit-tested
and schema-validated from a spec alone. Manifests are jinja2 templates under ``templates/``; values that are
whole Kubernetes fragments (resources, affinity, env, ...) are passed through the ``json`` filter, which
produces valid YAML flow style.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
import tomli_w
import yaml

from restate_operator import names
from restate_operator.hashing import config_hash
from restate_operator.models import ClusterSpec, DeploymentSpec, JsonObject, SpecError
from restate_operator.settings import OperatorSettings

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("restate_operator", "templates"),
    undefined=jinja2.ChainableUndefined,  # absent optional spec fields read as undefined,
    keep_trailing_newline=True,
    autoescape=False,  # YAML, not HTML
)
_ENV.filters["json"] = lambda value: json.dumps(value, sort_keys=True)

DEFAULT_RESTATE_PORT = 9080


def render_template(template: str, **context: Any) -> list[JsonObject]:
    """Render one multi-document template into its non-empty documents."""
    text = _ENV.get_template(template).render(**context)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def merge_env(defaults: Iterable[JsonObject], overrides: Iterable[JsonObject]) -> list[JsonObject]:
    """Operator defaults first, user variables override by name and keep their own order after them."""
    user = {item["name"]: item for item in overrides}
    merged = [user.pop(item["name"], item) for item in defaults]
    return merged + list(user.values())


def _deep_merge(base: JsonObject, overlay: Mapping[str, Any]) -> JsonObject:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render_config_toml(spec: ClusterSpec) -> str:
    """The server's TOML: the user's ``config`` with the structured spec fields laid over it."""
    try:
        base = tomllib.loads(spec.config)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"config is not valid TOML: {exc}") from exc
    overlay: JsonObject = {"cluster-name": spec.cluster_name}
    if spec.partitions is not None:
        overlay["default-num-partitions"] = spec.partitions
    if spec.replication is not None:
        overlay["default-replication"] = spec.replication
    snapshots: JsonObject = {}
    if spec.snapshot_destination:
        snapshots["destination"] = spec.snapshot_destination
    if spec.snapshot_interval_num_records is not None:
        snapshots["snapshot-interval-num-records"] = spec.snapshot_interval_num_records
    if snapshots:
        overlay["worker"] = {"snapshots": snapshots}
    return tomli_w.dumps(_deep_merge(base, overlay))


def cluster_labels(spec: ClusterSpec) -> dict[str, str]:
    """Labels on every object of a cluster, and the StatefulSet's selector."""
    return {names.APP_NAME: "restate", names.CLUSTER_LABEL: spec.name}


def _server_env(spec: ClusterSpec, settings: OperatorSettings) -> list[JsonObject]:
    def field_ref(name: str, path: str) -> JsonObject:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    defaults: list[JsonObject] = [
        field_ref("POD_NAME", "metadata.name"),
        field_ref("POD_NAMESPACE", "metadata.namespace"),
        field_ref("POD_IP", "status.podIP"),
        {"name": "RESTATE_LOG_FORMAT", "value": "json"},
        {"name": "RESTATE_CLUSTER_NAME", "value": spec.cluster_name},
        {"name": "RESTATE_BASE_DIR", "value": "/restate-data"},
        {"name": "RESTATE_CONFIG", "value": "/config/config.toml"},
        {"name": "RESTATE_NODE_NAME", "value": "$(POD_NAME)"},
        {
            "name": "RESTATE_ADVERTISED_ADDRESS",
            "value": settings.advertised_address_template.replace("{dns}", settings.cluster_dns),
        },
    ]
    if spec.security.get("trustedCaCerts"):
        defaults.append({"name": "SSL_CERT_FILE", "value": f"{names.TRUSTED_CA_DIR}/ca-bundle.crt"})
    if spec.signing_key is not None:
        defaults.append(
            {
                "name": "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE",
                "value": f"{names.SIGNING_DIR}/private.pem",
            }
        )
    return merge_env(defaults, spec.compute.get("env") or [])


def render_cluster(
    spec: ClusterSpec, settings: OperatorSettings, *, storage_bytes: int | None = None
) -> list[JsonObject]:
    """Every object of a RestateCluster, in creation order (the Namespace first).

    ``storage_bytes`` overrides the volume claim size, so a refused shrink keeps the current template.
    """
    config = render_config_toml(spec)
    labels = cluster_labels(spec)
    compute = spec.compute
    pod_labels = {**(compute.get("labels") or {}), **labels}
    pod_annotations = {**(compute.get("annotations") or {}), names.CONFIG_HASH: config_hash(config)}
    objects = render_template(
        "cluster.yaml.j2",
        spec=spec,
        names=names,
        labels=labels,
        pod_labels=pod_labels,
        pod_annotations=pod_annotations,
        compute=compute,
        security=spec.security,
        command=compute.get("command") or [settings.server_command],
        env=_server_env(spec, settings),
        config=config,
        storage_bytes=storage_bytes or spec.storage_request_bytes,
        trusted_ca=list(spec.security.get("trustedCaCerts") or []),
    )
    if not spec.security.get("disableNetworkPolicies", False):
        objects += render_network_policies(spec, settings)
    return objects


def render_network_policies(spec: ClusterSpec, settings: OperatorSettings) -> list[JsonObject]:
    """Default-deny plus the holes the server needs (DNS, peers, the operator, allowed deployments)."""
    security = spec.security
    peers = security.get("networkPeers") or {}
    operator_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.operator_namespace}},
        "podSelector": {"matchLabels": {names.APP_NAME: "restate-operator"}},
    }
    admin_peers = list(peers.get("admin") or [])
    if security.get("allowOperatorAccessToAdmin", True):
        admin_peers.append(operator_peer)
    return render_template(
        "network-policies.yaml.j2",
        spec=spec,
        labels=cluster_labels(spec),
        names=names,
        ingress_peers=list(peers.get("ingress") or []),
        admin_peers=admin_peers,
        node_peers=list(peers.get("node") or []) + list(peers.get("metrics") or []),
        egress_rules=list(security.get("networkEgressRules") or []),
        allow_label=names.allow_label(spec.name),
    )


def restate_port(template: Mapping[str, Any]) -> int:
    """The port the SDK listens on: a container port named ``restate``, else the first one, else 9080."""
    containers = (template.get("spec") or {}).get("containers") or []
    ports = [port for container in containers for port in container.get("ports") or []]
    for port in ports:
        if port.get("name") == "restate":
            return int(port["containerPort"])
    return int(ports[0]["containerPort"]) if ports else DEFAULT_RESTATE_PORT


def version_selector(spec: DeploymentSpec, version_hash: str) -> dict[str, str]:
    """Labels selecting exactly the pods of one version."""
    match = dict(spec.selector.get("matchLabels") or {})
    return {**match, names.POD_TEMPLATE_HASH: version_hash}


def render_autoscaler(spec: DeploymentSpec, name: str) -> JsonObject:
    """The HorizontalPodAutoscaler of an older version: ``spec.autoscaling`` aimed at its ReplicaSet.

    ``minReplicas`` is floored to 1, so a draining version is never scaled to zero by the autoscaler
    while it still has work (retiring it deletes the autoscaler first).
    """
    hpa_spec = dict(spec.autoscaling or {})
    hpa_spec["minReplicas"] = max(1, int(hpa_spec.get("minReplicas") or 1))
    hpa_spec["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name}
    (hpa,) = render_template("autoscaler.yaml.j2", spec=spec, names=names, name=name, hpa_spec=hpa_spec)
    return hpa


def render_version(spec: DeploymentSpec, version_hash: str, *, latest: bool) -> tuple[JsonObject, JsonObject]:
    """The ReplicaSet and the Service of one version (the Service still needs its owner, the ReplicaSet)."""
    template = spec.template
    metadata = template.get("metadata") or {}
    pod_labels = {**(metadata.get("labels") or {}), names.POD_TEMPLATE_HASH: version_hash}
    if spec.register.cluster:
        pod_labels[names.allow_label(spec.register.cluster)] = "true"
    pod_labels[names.LATEST] = "true" if latest else "false"
    selector = dict(spec.selector)
    selector["matchLabels"] = version_selector(spec, version_hash)
    replicaset, service = render_template(
        "version.yaml.j2",
        spec=spec,
        names=names,
        name=f"{spec.name}-{version_hash}",
        version_hash=version_hash,
        latest="true" if latest else "false",
        selector=selector,
        pod_metadata={**metadata, "labels": pod_labels},
        pod_spec=template.get("spec") or {},
        template_json=json.dumps(template, sort_keys=True, separators=(",", ":")),
        port=restate_port(template),
    )
    return replicaset, service
