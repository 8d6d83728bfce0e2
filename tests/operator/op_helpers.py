"""Shared test helpers: validation against Kubernetes' OpenAPI schemas and our CRDs, example specs."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.37.0"
"""The Kubernetes release whose OpenAPI schemas every rendered built-in object must satisfy."""


def validate_k8s(obj: dict[str, Any]) -> None:
    """Strict validation (no unknown fields) of a built-in object against the release's schema."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@functools.cache
def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every version of every CRD in crds/."""
    out = {}
    for path in sorted((ROOT / "crds").glob("*.restate.dev.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = version["schema"]["openAPIV3Schema"]
    return out


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON schema: ``nullable`` becomes a null type, x-* are dropped."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        out["additionalProperties"] = False  # the API server prunes unknown fields: treat them as errors
    return out


def validate_custom(obj: dict[str, Any]) -> None:
    """Validate a custom resource against its CRD's schema (metadata excluded, unknown fields rejected)."""
    schema = copy.deepcopy(crds()[(obj["apiVersion"], obj["kind"])])
    schema["properties"] = {
        **schema.get("properties", {}),
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    jsonschema.validate(obj, to_json_schema(schema))


def validate_any(obj: dict[str, Any]) -> None:
    """Built-ins against Kubernetes' schemas, our kinds against our CRDs."""
    if obj["apiVersion"].startswith("restate.dev/"):
        validate_custom(obj)
    else:
        validate_k8s(obj)


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


MINIMAL_CLUSTER: dict[str, Any] = {
    "compute": {"image": "ghcr.io/example/restate-py-server:0.1"},
    "storage": {"storageRequestBytes": 2147483648},
}

FULL_CLUSTER: dict[str, Any] = {
    "clusterName": "prod",
    "config": '[ingress]\nbind-address = "0.0.0.0:8080"\n\n[worker]\ninternal-queue-length = 100\n',
    "cluster": {
        "partitions": 24,
        "replication": 2,
        "etcd": {"endpoints": ["http://etcd-a.infra:2379", "http://etcd-b.infra:2379"]},
    },
    "snapshots": {"destination": "s3://bucket/snapshots", "snapshotIntervalNumRecords": 10000},
    "storage": {"storageRequestBytes": 10737418240, "storageClassName": "gp3"},
    "compute": {
        "image": "ghcr.io/example/restate-py-server:0.1",
        "replicas": 3,
        "env": [{"name": "RESTATE_LOG_FORMAT", "value": "text"}, {"name": "EXTRA", "value": "1"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        "labels": {"team": "payments"},
        "annotations": {"prometheus.io/scrape": "true"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "restate", "effect": "NoSchedule"}
        ],
        "nodeSelector": {"pool": "restate"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "restate"}},
            }
        ],
        "priorityClassName": "high",
        "sidecars": [{"name": "log-shipper", "image": "busybox:1.36", "args": ["sleep", "infinity"]}],
        "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "security": {
        "networkPeers": {
            "ingress": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}}],
            "admin": [{"podSelector": {"matchLabels": {"app": "admin-tool"}}}],
            "node": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
        },
        "networkEgressRules": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}], "ports": [{"port": 9092}]}],
        "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/restate"},
        "serviceAnnotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        "requestSigningPrivateKey": {
            "version": "v1",
            "secret": {"secretName": "signing", "key": "private.pem"},
        },
    },
}


PROVISIONED_CLUSTER: dict[str, Any] = {
    **MINIMAL_CLUSTER,
    "compute": {**MINIMAL_CLUSTER["compute"], "replicas": 3},
    "cluster": {"etcd": {"provision": {}}},
}
"""Three nodes on an etcd the operator runs (every provisioning field defaulted)."""

REFUSED_CLUSTER: dict[str, Any] = {
    **MINIMAL_CLUSTER,
    "compute": {**MINIMAL_CLUSTER["compute"], "replicas": 3},
}
"""Three replicas and no etcd: they would be unrelated servers."""


def deployment_spec(image: str = "ghcr.io/example/greeter:1", **restate: Any) -> dict[str, Any]:
    """A RestateDeployment spec registering with cluster ``demo``."""
    return {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "greeter"}},
        "template": {
            "metadata": {"labels": {"app": "greeter"}},
            "spec": {
                "containers": [
                    {"name": "greeter", "image": image, "ports": [{"name": "restate", "containerPort": 9080}]}
                ]
            },
        },
        "restate": {"register": {"cluster": "demo"}, **restate},
    }
