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
from restate_operator.models import (
    ClusterSpec,
    DeploymentSpec,
    EtcdProvision,
    JsonObject,
    SpecError,
    Topology,
)
from restate_operator.settings import OperatorSettings

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("restate_operator", "templates"),
    undefined=jinja2.ChainableUndefined,  # absent optional spec fields read as undefined,
    keep_trailing_newline=True,
    autoescape=False,  # YAML, not HTML
)
_ENV.filters["json"] = lambda value: json.dumps(value, sort_keys=True)

DEFAULT_RESTATE_PORT = 9080
NODE_PORT, INGRESS_PORT, ADMIN_PORT = 5122, 8080, 9070
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
ETCD_DATA_MOUNT = "/var/run/etcd"
ETCD_MAX_QUOTA_BYTES = 8 * 2**30
"""etcd's suggested maximum database size; past it, defragmentation and snapshots get slow."""


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
    return tomli_w.dumps(merged_config(spec))


def merged_config(spec: ClusterSpec) -> JsonObject:
    """The user's ``config`` with the structured spec fields laid over it, as a mapping."""
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
    return _deep_merge(base, overlay)


def cluster_labels(spec: ClusterSpec) -> dict[str, str]:
    """Labels on every object of a cluster, and the StatefulSet's selector."""
    return {names.APP_NAME: "restate", names.CLUSTER_LABEL: spec.name}


def etcd_labels(spec: ClusterSpec) -> dict[str, str]:
    """Labels of a provisioned etcd's objects and its StatefulSet's selector."""
    return {names.APP_NAME: names.ETCD_APP, names.CLUSTER_LABEL: spec.name}


def etcd_member_host(spec: ClusterSpec, settings: OperatorSettings, member: str) -> str:
    """The DNS name of a provisioned etcd member (``member`` may be ``$(POD_NAME)``)."""
    return f"{member}.{names.ETCD_SERVICE}.{spec.name}.svc.{settings.cluster_dns}"


def etcd_addresses(spec: ClusterSpec, settings: OperatorSettings) -> list[str]:
    """etcd client URLs the servers use: the spec's endpoints, or every provisioned member."""
    assert spec.etcd is not None, "only an etcd cluster has etcd addresses"
    provision = spec.etcd_provision
    if provision is None:
        return list(spec.etcd.endpoints)
    return [
        f"http://{etcd_member_host(spec, settings, f'{names.ETCD_STATEFULSET}-{n}')}:{ETCD_CLIENT_PORT}"
        for n in range(provision.members)
    ]


def _cluster_env(spec: ClusterSpec, settings: OperatorSettings) -> list[JsonObject]:
    """The variables that make every replica a node of one cluster on etcd (upstream's keys)."""
    config = merged_config(spec)
    snapshots = (config.get("worker") or {}).get("snapshots") or {}
    auto_provision = True if spec.auto_provision is None else spec.auto_provision
    values: dict[str, object | None] = {
        "RESTATE_BIND_ADDRESS": f"0.0.0.0:{NODE_PORT}",
        "RESTATE_INGRESS__BIND_ADDRESS": f"0.0.0.0:{INGRESS_PORT}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"0.0.0.0:{ADMIN_PORT}",
        "RESTATE_METADATA_CLIENT__TYPE": "etcd",
        "RESTATE_METADATA_CLIENT__ADDRESSES": json.dumps(
            etcd_addresses(spec, settings), separators=(",", ":")
        ),
        "RESTATE_BIFROST__DEFAULT_PROVIDER": "etcd",
        "RESTATE_DEFAULT_NUM_PARTITIONS": config.get("default-num-partitions"),
        "RESTATE_DEFAULT_REPLICATION": spec.effective_replication,
        # Safe on every node: the first compare-and-set of the cluster's configuration in etcd wins.
        "RESTATE_AUTO_PROVISION": "true" if auto_provision else "false",
        "RESTATE_WORKER__SNAPSHOTS__DESTINATION": snapshots.get("destination"),
        "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": snapshots.get(
            "snapshot-interval-num-records"
        ),
    }
    return [{"name": name, "value": str(value)} for name, value in values.items() if value is not None]


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
    if spec.topology is Topology.ETCD:
        defaults += _cluster_env(spec, settings)
    return merge_env(defaults, spec.compute.get("env") or [])


def _readiness_probe(spec: ClusterSpec) -> JsonObject:
    """A cluster node is ready when its ingress serves (upstream's chart); a single node when admin does."""
    if spec.topology is Topology.ETCD:
        return {"httpGet": {"path": "/restate/health", "port": INGRESS_PORT}}
    return {"httpGet": {"path": "/health", "port": ADMIN_PORT}}


def render_etcd(spec: ClusterSpec, provision: EtcdProvision, settings: OperatorSettings) -> list[JsonObject]:
    """A provisioned etcd: headless and client Services, the members' StatefulSet and its budget.

    Every member is listed in ``--initial-cluster`` by its pod DNS name, so the first start forms one
    cluster; a member restarting on its volume ignores those flags and rejoins with its data.
    """
    members = [f"{names.ETCD_STATEFULSET}-{n}" for n in range(provision.members)]
    peers = ",".join(f"{m}=http://{etcd_member_host(spec, settings, m)}:{ETCD_PEER_PORT}" for m in members)
    own_host = etcd_member_host(spec, settings, "$(POD_NAME)")
    args = [
        "--name=$(POD_NAME)",
        f"--data-dir={ETCD_DATA_MOUNT}/default.etcd",
        f"--listen-peer-urls=http://0.0.0.0:{ETCD_PEER_PORT}",
        f"--listen-client-urls=http://0.0.0.0:{ETCD_CLIENT_PORT}",
        f"--advertise-client-urls=http://{own_host}:{ETCD_CLIENT_PORT}",
        f"--initial-advertise-peer-urls=http://{own_host}:{ETCD_PEER_PORT}",
        f"--initial-cluster={peers}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={spec.name}-etcd",
        # The servers delete trimmed log keys; compaction is what frees their history.
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=5m",
        # Leave a quarter of the volume to the WAL and snapshot files.
        f"--quota-backend-bytes={min(provision.storage_request_bytes * 3 // 4, ETCD_MAX_QUOTA_BYTES)}",
    ]
    return render_template(
        "etcd.yaml.j2",
        spec=spec,
        names=names,
        labels=etcd_labels(spec),
        provision=provision,
        args=args,
        client_port=ETCD_CLIENT_PORT,
        peer_port=ETCD_PEER_PORT,
        data_mount=ETCD_DATA_MOUNT,
    )


def render_cluster(
    spec: ClusterSpec, settings: OperatorSettings, *, storage_bytes: int | None = None
) -> list[JsonObject]:
    """Every object of a RestateCluster, in creation order (the Namespace first, etcd before the servers).

    ``storage_bytes`` overrides the volume claim size, so a refused shrink keeps the current template.
    A :attr:`Topology.REFUSED` spec renders nothing: nothing new is created and nothing is changed.
    """
    if spec.topology is Topology.REFUSED:
        return []
    config = render_config_toml(spec)
    labels = cluster_labels(spec)
    compute = spec.compute
    pod_labels = {**(compute.get("labels") or {}), **labels}
    pod_annotations = {**(compute.get("annotations") or {}), names.CONFIG_HASH: config_hash(config)}
    namespace, *servers = render_template(
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
        readiness_probe=_readiness_probe(spec),
        config=config,
        storage_bytes=storage_bytes or spec.storage_request_bytes,
        trusted_ca=list(spec.security.get("trustedCaCerts") or []),
    )
    provision = spec.etcd_provision
    etcd = render_etcd(spec, provision, settings) if provision is not None else []
    objects = [namespace, *etcd, *servers]
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
        etcd_labels=etcd_labels(spec) if spec.etcd_provision is not None else None,
        etcd_client_port=ETCD_CLIENT_PORT,
        etcd_peer_port=ETCD_PEER_PORT,
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
