"""CRDs: valid apiextensions/v1 objects with structural schemas, sane defaults, CEL, columns and subresources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from op_helpers import ROOT, to_json_schema, validate_custom, validate_k8s

CRD_FILES = sorted((ROOT / "crds").glob("*.restate.dev.yaml"))
CRDS = {path.name: yaml.safe_load(path.read_text()) for path in CRD_FILES}


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below ``node`` (properties, items, additionalProperties), with its path."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def versions() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}:{v['name']}", v) for name, crd in CRDS.items() for v in crd["spec"]["versions"]]


def test_expected_crds_exist() -> None:
    kinds = {
        (crd["spec"]["names"]["kind"], crd["spec"]["scope"], crd["spec"]["versions"][0]["name"])
        for crd in CRDS.values()
    }
    assert kinds == {
        ("RestateCluster", "Cluster", "v1"),
        ("RestateDeployment", "Namespaced", "v1beta1"),
        ("Subscription", "Namespaced", "v1alpha1"),
    }
    short = {crd["spec"]["names"]["kind"]: crd["spec"]["names"]["shortNames"] for crd in CRDS.values()}
    assert short == {"RestateCluster": ["rsc"], "RestateDeployment": ["rsd"], "Subscription": ["rsub"]}


@pytest.mark.parametrize("name", list(CRDS), ids=list(CRDS))
def test_crd_validates_against_apiextensions_schema(name: str) -> None:
    crd = CRDS[name]
    validate_k8s(crd)
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"


@pytest.mark.parametrize(("vid", "version"), versions(), ids=[v for v, _ in versions()])
def test_crd_schema_is_structural(vid: str, version: dict[str, Any]) -> None:
    root = version["schema"]["openAPIV3Schema"]
    assert root["type"] == "object"
    for path, node in schema_nodes(root):
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{vid}{path}: no type"
        assert not ("properties" in node and "additionalProperties" in node), f"{vid}{path}: both"
        for forbidden in ("$ref", "definitions", "dependencies", "allOf", "oneOf", "anyOf"):
            assert forbidden not in node, f"{vid}{path}: {forbidden} is not allowed in a structural schema"


@pytest.mark.parametrize(("vid", "version"), versions(), ids=[v for v, _ in versions()])
def test_crd_defaults_satisfy_their_own_schema(vid: str, version: dict[str, Any]) -> None:
    checked = 0
    for _path, node in schema_nodes(version["schema"]["openAPIV3Schema"]):
        if "default" in node:
            sub = {k: v for k, v in node.items() if k != "default"}
            jsonschema.validate(node["default"], to_json_schema(sub))
            checked += 1
    assert checked or vid.startswith("subscriptions"), vid


def jsonpath_in_schema(root: dict[str, Any], jsonpath: str) -> bool:
    node = root
    for part in jsonpath.lstrip(".").split("."):
        part = part.split("[")[0]
        if node.get("x-kubernetes-preserve-unknown-fields") and part not in (node.get("properties") or {}):
            return True
        node = (node.get("properties") or {}).get(part) or (node.get("items") or {}).get(
            "properties", {}
        ).get(part)
        if node is None:
            return False
    return True


@pytest.mark.parametrize(("vid", "version"), versions(), ids=[v for v, _ in versions()])
def test_printer_columns_and_scale_paths_exist(vid: str, version: dict[str, Any]) -> None:
    root = version["schema"]["openAPIV3Schema"]
    for column in version.get("additionalPrinterColumns") or []:
        path = column["jsonPath"]
        if path.startswith(".metadata"):
            continue
        assert jsonpath_in_schema(root, path.split("[?")[0]), f"{vid}: {path}"
    scale = (version.get("subresources") or {}).get("scale")
    if scale:
        for key in ("specReplicasPath", "statusReplicasPath", "labelSelectorPath"):
            assert jsonpath_in_schema(root, scale[key]), f"{vid}: {key}"
    assert "status" in version["subresources"]


def rules(crd: str) -> dict[str, str]:
    version = CRDS[crd]["spec"]["versions"][0]
    return {
        path: rule["rule"]
        for path, node in schema_nodes(version["schema"]["openAPIV3Schema"])
        for rule in node.get("x-kubernetes-validations") or []
    }


def test_cel_rules_where_upstream_has_them() -> None:
    deployment = rules("restatedeployments.restate.dev.yaml")
    assert deployment[".spec.deploymentMode"] == "self == oldSelf"
    assert "size() == 1" in deployment[".spec.restate.register"]
    assert "autoscaling" in deployment[".spec"]
    cluster = rules("restateclusters.restate.dev.yaml")
    assert cluster[".spec.storage.storageClassName"] == "self == oldSelf"
    assert cluster[".spec.storage.storageRequestBytes"] == "self >= oldSelf"


def test_restate_deployment_has_scale_subresource() -> None:
    version = CRDS["restatedeployments.restate.dev.yaml"]["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.labelSelector",
    }


def test_cluster_etcd_fields_are_checked_by_the_crd() -> None:
    cluster = rules("restateclusters.restate.dev.yaml")
    assert cluster[".spec.cluster.etcd"] == "has(self.endpoints) != has(self.provision)"
    assert cluster[".spec.cluster.etcd.provision.replicas"] == "self == oldSelf"
    assert cluster[".spec.cluster.etcd.provision.storageRequestBytes"] == "self == oldSelf"
    base = {"compute": {"image": "x", "replicas": 3}, "storage": {"storageRequestBytes": 1}}

    def check(etcd: dict[str, Any]) -> None:
        obj = {"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "metadata": {}, "spec": base}
        validate_custom({**obj, "spec": {**base, "cluster": {"etcd": etcd}}})

    check({"endpoints": ["http://etcd-0.etcd.infra.svc:2379", "https://10.0.0.1:2379/"]})
    check({"provision": {"replicas": 5, "image": "registry.k8s.io/etcd:3.5.17-0"}})
    for bad in ({"endpoints": ["etcd-0:2379"]}, {"endpoints": []}, {"provision": {"replicas": 2}}):
        with pytest.raises(jsonschema.ValidationError):
            check(bad)
