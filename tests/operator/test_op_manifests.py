"""manifests/: the kustomization builds, every object is valid, examples parse, RBAC covers the operator."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml
from op_helpers import ROOT, load_yaml_docs, validate_any
from restate_operator.kube import RESOURCES
from restate_operator.models import ClusterSpec, DeploymentSpec, SubscriptionSpec, Topology

MANIFESTS = ROOT / "manifests"
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))


def kustomization_files(directory: Any) -> list[Any]:
    resources = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
    files = []
    for entry in resources:
        target = (directory / entry).resolve()
        files += kustomization_files(target) if target.is_dir() else [target]
    return files


def test_kustomization_resources_exist() -> None:
    files = kustomization_files(MANIFESTS)
    assert all(f.exists() for f in files)
    assert {f.name for f in files} >= {
        "rbac.yaml",
        "deployment.yaml",
        "namespace.yaml",
        "restateclusters.restate.dev.yaml",
    }


@pytest.mark.parametrize("path", [*kustomization_files(MANIFESTS), *EXAMPLES], ids=lambda p: p.name)
def test_manifest_objects_are_valid(path: Any) -> None:
    for obj in load_yaml_docs(path):
        if obj.get("kind") == "Kustomization":
            continue
        validate_any(obj)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("directory", ["manifests", "manifests/examples"])
def test_kubectl_kustomize_builds(directory: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / directory)], check=True, capture_output=True, text=True
    ).stdout
    assert all(doc["kind"] for doc in yaml.safe_load_all(out) if doc)


def test_examples_parse_into_operator_models() -> None:
    docs = {doc["kind"]: doc for path in EXAMPLES for doc in load_yaml_docs(path)}
    clusters = [doc for path in EXAMPLES for doc in load_yaml_docs(path) if doc["kind"] == "RestateCluster"]
    topologies = {ClusterSpec.parse(c["metadata"]["name"], c["spec"]).topology for c in clusters}
    assert topologies == {Topology.SINGLE_NODE, Topology.ETCD}, "one single-node and one etcd example"
    DeploymentSpec.parse("greeter", "default", docs["RestateDeployment"]["spec"])
    SubscriptionSpec.parse(docs["Subscription"]["spec"])


def granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_rbac_covers_every_resource_the_operator_touches() -> None:
    role = next(d for d in load_yaml_docs(MANIFESTS / "rbac.yaml") if d["kind"] == "ClusterRole")
    for (api_version, _kind), (plural, _) in RESOURCES.items():
        group = api_version.rpartition("/")[0]
        verbs = granted(role["rules"], group, plural)
        assert {"get", "patch"} <= verbs, f"{group}/{plural}: {verbs}"
    assert "*" not in str(role["rules"])  # least privilege: no wildcards
    assert not granted(role["rules"], "", "secrets")  # the operator never reads signing keys


def test_operator_deployment_runs_the_console_script() -> None:
    deployment = load_yaml_docs(MANIFESTS / "deployment.yaml")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["restate-py-operator"]
    assert "--standalone" in container["args"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'restate-py-operator = "restate_operator.__main__:main"' in pyproject
