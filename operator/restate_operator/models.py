"""Typed views of the three custom resources' specs.

Parsing is the only place that knows the camelCase field names; everything downstream (templates,
planning, handlers) works on these frozen dataclasses. Invalid specs raise :class:`SpecError`, which the
handlers turn into ``kopf.PermanentError`` and a ``Ready=False`` condition: retrying cannot fix them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JsonObject = dict[str, Any]
"""A Kubernetes object or a fragment of one, as decoded from JSON."""

GROUP = "restate.dev"
CLUSTER_VERSION = "v1"
DEPLOYMENT_VERSION = "v1beta1"
SUBSCRIPTION_VERSION = "v1alpha1"

_SOURCE_RE = re.compile(r"^kafka://[^/\s]+/[^/\s]+$")
_SINK_RE = re.compile(r"^service://[^/\s]+/[^/\s]+$")
_ENDPOINT_RE = re.compile(r"^https?://[^/\s]+:\d+/?$")
_RESERVED_VOLUMES = frozenset(
    {"storage", "tmp", "config", "request-signing-private-key", "trusted-ca-bundle"}
)


class SpecError(ValueError):
    """The spec cannot be reconciled as written; the message says which field and why."""


DEFAULT_ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.17"
"""Image of a provisioned etcd: the official one, pinned so a re-render never changes the members' binary."""
DEFAULT_ETCD_MEMBERS = 3
"""Members of a provisioned etcd: three survive the loss of one."""
DEFAULT_ETCD_STORAGE_BYTES = 8 * 2**30
"""Volume of each provisioned etcd member (8 GiB, etcd's suggested maximum database size)."""


def _obj(spec: Mapping[str, Any], key: str) -> JsonObject:
    value = spec.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{key} must be an object")
    return dict(value)


def _list(spec: Mapping[str, Any], key: str) -> list[Any]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(f"{key} must be a list")
    return list(value)


def _int(spec: Mapping[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """Where the request-signing private key comes from: a Secret key, or a CSI secret provider."""

    secret_name: str | None = None
    secret_key: str | None = None
    provider: str | None = None
    provider_path: str | None = None
    provider_parameters: JsonObject = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SigningKey | None:
        if not raw:
            return None
        if raw.get("version", "v1") != "v1":
            raise SpecError("security.requestSigningPrivateKey.version must be 'v1'")
        secret, provider = _obj(raw, "secret"), _obj(raw, "secretProvider")
        if bool(secret) == bool(provider):
            raise SpecError("security.requestSigningPrivateKey needs exactly one of secret, secretProvider")
        if secret:
            return cls(secret_name=secret.get("secretName"), secret_key=secret.get("key"))
        return cls(
            provider=provider.get("provider"),
            provider_path=provider.get("path"),
            provider_parameters=_obj(provider, "parameters"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdProvision:
    """An etcd the operator runs for the cluster: a StatefulSet of ``members`` from the official image."""

    members: int
    image: str
    storage_request_bytes: int
    storage_class_name: str | None
    resources: JsonObject

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> EtcdProvision:
        members = _int(raw, "replicas", DEFAULT_ETCD_MEMBERS, minimum=1)
        if members % 2 == 0:
            raise SpecError(f"cluster.etcd.provision.replicas must be odd (1, 3, 5), got {members}")
        return cls(
            members=members,
            image=raw.get("image") or DEFAULT_ETCD_IMAGE,
            storage_request_bytes=_int(raw, "storageRequestBytes", DEFAULT_ETCD_STORAGE_BYTES, minimum=1),
            storage_class_name=raw.get("storageClassName"),
            resources=_obj(raw, "resources"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdSpec:
    """Where a clustered RestateCluster keeps its metadata and its replicated log: exactly one source."""

    endpoints: tuple[str, ...] = ()
    """Client URLs of an etcd the user runs (``cluster.etcd.endpoints``)."""
    provision: EtcdProvision | None = None
    """An etcd the operator runs (``cluster.etcd.provision``)."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> EtcdSpec | None:
        if not raw:
            return None
        endpoints = tuple(str(e) for e in _list(raw, "endpoints"))
        provision = raw.get("provision")
        if bool(endpoints) == (provision is not None):
            raise SpecError("cluster.etcd needs exactly one of endpoints, provision")
        for endpoint in endpoints:
            if not _ENDPOINT_RE.match(endpoint):
                raise SpecError(f"cluster.etcd.endpoints: {endpoint!r} is not an http(s)://host:port URL")
        if provision is None:
            return cls(endpoints=endpoints)
        return cls(provision=EtcdProvision.parse(_obj(raw, "provision")))


class Topology(StrEnum):
    """How the servers of a RestateCluster relate to each other; decided by the spec alone."""

    SINGLE_NODE = "SingleNode"
    """At most one replica and no etcd: the embedded metadata store and log, as a single node runs."""
    ETCD = "Etcd"
    """etcd holds the metadata and the replicated log: every replica is a node of one cluster."""
    REFUSED = "Refused"
    """More than one replica without etcd: they would be unrelated servers splitting the state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    """A RestateCluster's spec: what the StatefulSet, its config and its network policies look like."""

    name: str
    cluster_name: str
    image: str
    replicas: int
    storage_request_bytes: int
    storage_class_name: str | None
    volume_attributes_class_name: str | None
    compute: JsonObject
    security: JsonObject
    signing_key: SigningKey | None
    config: str
    partitions: int | None
    replication: int | None
    snapshot_destination: str | None
    snapshot_interval_num_records: int | None
    auto_provision: bool | None
    """``cluster.autoProvision``; unset means "yes" for an etcd cluster (the first compare-and-set wins)."""
    etcd: EtcdSpec | None = None

    @property
    def topology(self) -> Topology:
        if self.etcd is not None:
            return Topology.ETCD
        return Topology.REFUSED if self.replicas > 1 else Topology.SINGLE_NODE

    @property
    def etcd_provision(self) -> EtcdProvision | None:
        """The etcd the operator runs for this cluster, if it runs one."""
        return self.etcd.provision if self.etcd is not None else None

    @property
    def effective_replication(self) -> int:
        """Copies of each partition: ``cluster.replication``, else two where there are two nodes."""
        return self.replication or max(1, min(2, self.replicas))

    def refusal(self) -> str:
        """Why a :attr:`Topology.REFUSED` spec is not applied, naming the fields that fix it."""
        return (
            f"compute.replicas is {self.replicas}, but more than one node needs etcd to form one cluster "
            "(without it they would be unrelated servers splitting the state): set "
            "spec.cluster.etcd.endpoints (an etcd you run) or spec.cluster.etcd.provision (the operator "
            "runs one), or set compute.replicas to 1"
        )

    @classmethod
    def parse(cls, name: str, spec: Mapping[str, Any]) -> ClusterSpec:
        compute, storage, security = _obj(spec, "compute"), _obj(spec, "storage"), _obj(spec, "security")
        cluster, snapshots = _obj(spec, "cluster"), _obj(spec, "snapshots")
        image = compute.get("image")
        if not image:
            raise SpecError("compute.image is required")
        if "storageRequestBytes" not in storage:
            raise SpecError("storage.storageRequestBytes is required")
        for cert in _list(security, "trustedCaCerts"):
            if not cert.get("secretName") or not cert.get("key"):
                raise SpecError("security.trustedCaCerts entries need secretName and key")
        for volume in _list(compute, "extraVolumes"):
            if volume.get("name") in _RESERVED_VOLUMES or str(volume.get("name", "")).startswith(
                "trusted-ca-"
            ):
                raise SpecError(f"compute.extraVolumes: the name {volume.get('name')!r} is reserved")
        partitions = cluster.get("partitions")
        replication = cluster.get("replication")
        interval = snapshots.get("snapshotIntervalNumRecords")
        return cls(
            name=name,
            cluster_name=spec.get("clusterName") or name,
            image=image,
            replicas=_int(compute, "replicas", 1),
            storage_request_bytes=_int(storage, "storageRequestBytes", 0, minimum=1),
            storage_class_name=storage.get("storageClassName"),
            volume_attributes_class_name=storage.get("volumeAttributesClassName"),
            compute=compute,
            security=security,
            signing_key=SigningKey.parse(_obj(security, "requestSigningPrivateKey")),
            config=spec.get("config") or "",
            partitions=None if partitions is None else _int(cluster, "partitions", 1, minimum=1),
            replication=None if replication is None else _int(cluster, "replication", 1, minimum=1),
            snapshot_destination=snapshots.get("destination"),
            snapshot_interval_num_records=None
            if interval is None
            else _int(snapshots, "snapshotIntervalNumRecords", 1, minimum=1),
            auto_provision=None if cluster.get("autoProvision") is None else bool(cluster["autoProvision"]),
            etcd=EtcdSpec.parse(_obj(cluster, "etcd")),
        )


class DeletionPolicy(StrEnum):
    """What deleting a RestateDeployment does with versions that still have work."""

    DRAIN = "Drain"
    """Wait, however long it takes, until no version is in use."""
    DRAIN_THEN_FORCE = "Drain-then-Force"
    """Wait up to ``deleteTimeoutSeconds``, then deregister with force."""
    FORCE = "Force"
    """Deregister with force at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """Where a RestateDeployment registers its versions: exactly one target is set."""

    cluster: str | None = None
    service_name: str | None = None
    service_namespace: str | None = None
    service_path: str = ""
    service_port: int = 9070
    url: str | None = None
    cloud: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Register:
        service = _obj(raw, "service")
        targets = [k for k in ("cluster", "cloud", "service", "url") if raw.get(k)]
        if len(targets) != 1:
            raise SpecError("restate.register needs exactly one of cluster, cloud, service, url")
        if targets == ["cloud"]:
            raise SpecError(
                "restate.register.cloud: RestateCloudEnvironment is not supported by this operator"
            )
        return cls(
            cluster=raw.get("cluster"),
            service_name=service.get("name"),
            service_namespace=service.get("namespace"),
            service_path=service.get("path") or "",
            service_port=_int(service, "port", 9070, minimum=1),
            url=raw.get("url"),
        )

    @property
    def target(self) -> str:
        """A string naming the admin endpoint; part of the template hash."""
        if self.cluster:
            return self.cluster
        if self.service_name:
            return f"{self.service_namespace}/{self.service_name}:{self.service_port}{self.service_path}"
        return self.url or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpec:
    """A RestateDeployment's spec in ReplicaSet mode."""

    name: str
    namespace: str
    replicas: int
    revision_history_limit: int
    min_ready_seconds: int
    selector: JsonObject
    template: JsonObject
    register: Register
    service_path: str
    use_http11: bool
    drain_delay_seconds: int
    deletion_policy: DeletionPolicy
    delete_timeout_seconds: int
    autoscaling: JsonObject | None = None
    """HorizontalPodAutoscaler spec for older versions (the latest one scales through the resource)."""

    @classmethod
    def parse(cls, name: str, namespace: str, spec: Mapping[str, Any]) -> DeploymentSpec:
        if spec.get("deploymentMode", "replicaset") != "replicaset":
            raise SpecError("deploymentMode: only 'replicaset' is supported by this operator")
        restate = _obj(spec, "restate")
        template, selector = _obj(spec, "template"), _obj(spec, "selector")
        labels = _obj(template.get("metadata") or {}, "labels")
        for key, value in _obj(selector, "matchLabels").items():
            if labels.get(key) != value:
                raise SpecError(f"selector.matchLabels {key}={value} does not match the template labels")
        if not _list(_obj(template, "spec"), "containers"):
            raise SpecError("template.spec.containers must not be empty")
        try:
            policy = DeletionPolicy(restate.get("deletionPolicy") or DeletionPolicy.DRAIN)
        except ValueError as exc:
            raise SpecError(
                f"restate.deletionPolicy must be one of {[p.value for p in DeletionPolicy]}"
            ) from exc
        autoscaling = _obj(spec, "autoscaling") or None
        if autoscaling is not None and not autoscaling.get("maxReplicas"):
            raise SpecError("autoscaling.maxReplicas is required")
        return cls(
            autoscaling=autoscaling,
            name=name,
            namespace=namespace,
            replicas=_int(spec, "replicas", 1),
            revision_history_limit=_int(spec, "revisionHistoryLimit", 10),
            min_ready_seconds=_int(spec, "minReadySeconds", 0),
            selector=selector,
            template=template,
            register=Register.parse(_obj(restate, "register")),
            service_path=(restate.get("servicePath") or "").strip("/"),
            use_http11=bool(restate.get("useHttp11", False)),
            drain_delay_seconds=_int(restate, "drainDelaySeconds", 300),
            deletion_policy=policy,
            delete_timeout_seconds=_int(restate, "deleteTimeoutSeconds", 3600),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionSpec:
    """A Subscription: Kafka ``source`` to ``sink`` handler, through cluster ``cluster``'s admin API."""

    cluster: str
    source: str
    sink: str
    options: dict[str, str]

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> SubscriptionSpec:
        cluster, source, sink = spec.get("cluster"), spec.get("source", ""), spec.get("sink", "")
        if not cluster:
            raise SpecError("cluster is required")
        if not _SOURCE_RE.match(source):
            raise SpecError(f"source must look like kafka://<cluster>/<topic>, got {source!r}")
        if not _SINK_RE.match(sink):
            raise SpecError(f"sink must look like service://<Service>/<handler>, got {sink!r}")
        options = {str(k): str(v) for k, v in _obj(spec, "options").items()}
        return cls(cluster=cluster, source=source, sink=sink, options=options)
