"""Label, annotation and object names the operator writes: the contract with users, tools and e2e tests."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "restate-operator"
APP_NAME = "app.kubernetes.io/name"
CLUSTER_LABEL = "restate.dev/cluster"
"""On every object of a RestateCluster: the cluster's name."""

OWNED_BY = "restate.dev/owned-by"
"""On a version's ReplicaSet and Service: the RestateDeployment's name."""
POD_TEMPLATE_HASH = "pod-template-hash"
"""On a version's ReplicaSet, Service and pods: the version hash (``<rsd>-<hash>`` is the name)."""
LATEST = "restate.dev/latest"
"""``"true"`` on the ReplicaSet, Service and pods of the version the spec currently asks for."""


def allow_label(cluster: str) -> str:
    """Pods with this label set to ``"true"`` may be reached by the cluster's pods (egress policy)."""
    return f"allow.restate.dev/{cluster}"


DEPLOYMENT_ID = "restate.dev/deployment-id"
"""On a version's ReplicaSet and Service: the ``dp_…`` id it is registered under."""
REMOVE_VERSION_AT = "restate.dev/remove-version-at"
"""On a version's ReplicaSet: RFC 3339 time after which an unused version is deregistered."""
POD_TEMPLATE = "restate.dev/pod-template"
"""On a version's ReplicaSet: the pod template JSON, to detect hash collisions."""
AUTOSCALED = "restate.dev/autoscaled"
"""On a version's ReplicaSet: ``"true"`` while the operator keeps a HorizontalPodAutoscaler for it."""
CONFIG_HASH = "restate.dev/config-hash"
"""On the StatefulSet's pod template: hash of the rendered config; a change rolls the pods."""

STATEFULSET = "restate"
SERVICE = "restate"
HEADLESS_SERVICE = "restate-cluster"
CONFIGMAP = "restate-config"
SERVICE_ACCOUNT = "restate"
SIGNING_VOLUME = "request-signing-private-key"
SIGNING_DIR = "/etc/restate/signing"
TRUSTED_CA_DIR = "/etc/restate/trusted-ca"
"""Where the trusted CA bundle (system CAs plus ``security.trustedCaCerts``) is mounted."""

ETCD_APP = "etcd"
"""``app.kubernetes.io/name`` of a provisioned etcd's objects (the servers' Services must not select them)."""
ETCD_STATEFULSET = "etcd"
ETCD_SERVICE = "etcd"
"""Headless: members reach each other and the servers reach members as ``etcd-<n>.etcd.<ns>.svc``."""
ETCD_CLIENT_SERVICE = "etcd-client"
"""One address for tools (``etcdctl``); the servers list every member instead."""
