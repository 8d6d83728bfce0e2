"""The Helm chart rendered by a real Helm engine (helm-python-sdk), every object validated."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from op_helpers import MINIMAL_CLUSTER, ROOT, load_yaml_docs, validate_k8s
from restate_operator.models import ClusterSpec
from restate_operator.render import render_cluster
from restate_operator.settings import OperatorSettings

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (a Helm engine) is not installed")

CHART = ROOT / "helm" / "restate-operator"
ALL_ON = {"serviceMonitor": {"enabled": True}, "grafanaDashboard": {"enabled": True}}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name="rop", namespace="restate-operator", is_install=True)
    docs = []
    for path, text in out.items():
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["defaults", "everything-enabled"])
def test_chart_renders_valid_kubernetes_objects(values: dict[str, Any]) -> None:
    docs = render(values)
    kinds = by_kind(docs)
    assert {
        "Deployment",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "CustomResourceDefinition",
    } <= set(kinds)
    for doc in docs:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # not a built-in: checked below
        validate_k8s(doc)


def test_chart_lints_clean() -> None:
    result = helm.lint(str(CHART), ALL_ON, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m.get("severity", 0) >= 2] == []


def test_chart_crds_are_the_repository_crds() -> None:
    rendered = {d["metadata"]["name"]: d for d in by_kind(render({}))["CustomResourceDefinition"]}
    for path in sorted((ROOT / "crds").glob("*.restate.dev.yaml")):
        source = yaml.safe_load(path.read_text())
        chart_copy = (CHART / "files" / "crds" / path.name).read_text()
        assert chart_copy == path.read_text(), f"{path.name}: copy it into the chart's files/crds/"
        crd = rendered[source["metadata"]["name"]]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["spec"] == source["spec"]
    assert "CustomResourceDefinition" not in by_kind(render({"installCrds": False}))


def test_chart_rbac_matches_the_kustomize_install() -> None:
    chart_role = by_kind(render({}))["ClusterRole"][0]
    manifest_role = next(
        d for d in load_yaml_docs(ROOT / "manifests" / "rbac.yaml") if d["kind"] == "ClusterRole"
    )
    assert chart_role["rules"] == manifest_role["rules"]


def test_chart_operator_settings_reach_the_environment() -> None:
    values = {
        "operator": {
            "clusterDns": "corp.local",
            "adminUrlTemplate": "http://{pod_ip}:9070",
            "resyncSeconds": 2,
        }
    }
    deployment = by_kind(render(values))["Deployment"][0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RESTATE_OPERATOR_CLUSTER_DNS"] == "corp.local"
    assert env["RESTATE_OPERATOR_ADMIN_URL_TEMPLATE"] == "http://{pod_ip}:9070"
    assert env["RESTATE_OPERATOR_RESYNC_SECONDS"] == "2"
    assert container["command"] == ["restate-py-operator"]
    assert (
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "restate-operator"
    )


def test_chart_values_schema_rejects_bad_values() -> None:
    with pytest.raises(Exception, match="replicaCount"):
        render({"replicaCount": 3})
    with pytest.raises(Exception, match="serviceMonitor"):
        render({"serviceMonitor": {"enabled": True, "interval": "often"}})


def test_service_monitor_scrapes_restate_metrics_port() -> None:
    monitor = by_kind(render(ALL_ON))["ServiceMonitor"][0]
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "restate"}
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    # the port name exists on the Service the operator renders for every cluster
    template = (ROOT / "operator" / "restate_operator" / "templates" / "cluster.yaml.j2").read_text()
    assert "{name: metrics, port: 5122" in template


def test_grafana_dashboard_is_shipped_with_unique_panels() -> None:
    """Which metrics the panels query is checked against a live server's `/metrics` after real SDK
    traffic (tests/integration/test_metrics.py), not by reading the source."""
    configmap = by_kind(render(ALL_ON))["ConfigMap"][0]
    dashboard = json.loads(configmap["data"]["restate-server.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(re.search(r"\b(restate|process)_[a-z_]+", e) for e in exprs)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_values_are_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-zA-Z]+:", line) and not line.startswith(
            (
                "image:",
                "serviceAccount:",
                "operator:",
                "serviceMonitor:",
                "grafanaDashboard:",
                "resources:",
                "podSecurityContext:",
                "securityContext:",
                "nodeSelector:",
                "tolerations:",
                "affinity:",
                "priorityClassName:",
            )
        ):
            assert lines[i - 1].startswith("#"), f"values.yaml: {line!r} has no comment"
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) == set(schema["properties"])


def test_metrics_peers_let_prometheus_scrape_the_node_port() -> None:
    """What values.yaml and NOTES.txt tell users to set: `networkPeers.metrics` opens 5122 to them."""
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    spec = {**MINIMAL_CLUSTER, "security": {"networkPeers": {"metrics": [prometheus]}}}
    objects = render_cluster(ClusterSpec.parse("demo", spec), OperatorSettings())
    policy = next(
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-node-access"
    )
    (rule,) = policy["spec"]["ingress"]
    assert prometheus in rule["from"]
    assert rule["ports"] == [{"port": 5122, "protocol": "TCP"}]
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "networkPeers" in notes
