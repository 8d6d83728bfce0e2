"""fakekube against its real clients: kubectl (apply, get, patch, scale, wait, delete, watch) and kopf."""

from __future__ import annotations

import json
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest

from .conftest import KUBECTL, REPO, Cluster, wait_for

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
      additionalPrinterColumns:
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Phase, type: string, jsonPath: .status.phase}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, default: 3}
                replicas: {type: integer, default: 1}
                mode: {type: string, enum: [fast, slow]}
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
"""

WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, labels: {tier: gold}}
spec: {mode: fast, unknownField: dropped}
"""

W = "/apis/example.com/v1/namespaces/default/widgets"


@pytest.fixture(scope="module")
def widgets(fakekube: Cluster) -> Cluster:
    fakekube.apply(WIDGET_CRD)
    fakekube.kubectl("wait", "--for=condition=established", "--timeout=10s", "crd/widgets.example.com")
    return fakekube


def test_discovery_and_version(fakekube: Cluster) -> None:
    assert "v1.32.0-fakekube" in fakekube.kubectl("version")
    resources = fakekube.kubectl("api-resources")
    for name in ("statefulsets", "poddisruptionbudgets", "networkpolicies", "customresourcedefinitions"):
        assert name in resources
    assert fakekube.request("GET", "/openapi/v2")[0] == 404


def test_custom_resource_defaults_prunes_and_versions(widgets: Cluster) -> None:
    widgets.apply(WIDGET)
    obj = widgets.get(f"{W}/w1")
    assert obj is not None
    assert obj["spec"] == {"mode": "fast", "size": 3, "replicas": 1}
    assert obj["metadata"]["generation"] == 1
    rv = obj["metadata"]["resourceVersion"]
    widgets.kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":9}}')
    obj = widgets.get(f"{W}/w1")
    assert obj is not None
    assert obj["metadata"]["generation"] == 2
    assert int(obj["metadata"]["resourceVersion"]) > int(rv)
    # status goes through /status only, and does not bump the generation
    widgets.kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"status":{"phase":"x"}}')
    assert "status" not in (widgets.get(f"{W}/w1") or {})
    widgets.kubectl(
        "patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Ready"}}'
    )
    obj = widgets.get(f"{W}/w1")
    assert obj is not None
    assert obj["status"] == {"phase": "Ready"}
    assert obj["metadata"]["generation"] == 2
    # server-side printing with the CRD's printer columns
    header, row = widgets.kubectl("get", "widgets").splitlines()
    assert header.split() == ["NAME", "SIZE", "PHASE", "AGE"]
    assert row.split()[:3] == ["w1", "9", "Ready"]
    # invalid enum value: 422
    out = widgets.kubectl(
        "patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"mode":"warp"}}', check=False
    )
    assert "Unsupported value" in out


def test_scale_subresource_and_wait(widgets: Cluster) -> None:
    widgets.apply(WIDGET)  # each test stands alone
    widgets.kubectl("scale", "widget/w1", "--replicas=4")
    scale = widgets.get(f"{W}/w1/scale")
    assert scale is not None
    assert scale["spec"]["replicas"] == 4
    widgets.kubectl(
        "patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"replicas":4}}'
    )
    widgets.kubectl("wait", "--for=jsonpath={.status.replicas}=4", "--timeout=10s", "widget/w1")
    assert "w1" in widgets.kubectl("get", "wd", "-l", "tier=gold")
    assert "w1" not in widgets.kubectl("get", "wd", "-l", "tier notin (gold)")


def test_conflicts_and_errors(widgets: Cluster) -> None:
    widgets.apply(WIDGET)  # each test stands alone
    obj = widgets.get(f"{W}/w1")
    assert obj is not None
    stale = json.loads(json.dumps(obj))
    stale["metadata"]["resourceVersion"] = "1"
    status, body = widgets.request("PUT", f"{W}/w1", stale)
    assert (status, body["reason"], body["kind"]) == (409, "Conflict", "Status")
    status, body = widgets.request(
        "POST", W, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}}
    )
    assert (status, body["reason"]) == (409, "AlreadyExists")
    test_op = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}]
    status, _ = widgets.request("PATCH", f"{W}/w1", test_op, "application/json-patch+json")
    assert status == 422
    assert widgets.request("GET", f"{W}/nope")[0] == 404
    status, body = widgets.request(
        "POST", W, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"generateName": "g-"}}
    )
    assert status == 201
    assert body["metadata"]["name"].startswith("g-")


def test_server_side_apply_removes_dropped_fields(widgets: Cluster) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1', b: '2'}\n"
    widgets.kubectl("apply", "--server-side", "-f", "-", stdin=manifest)
    widgets.kubectl("apply", "--server-side", "-f", "-", stdin=manifest.replace(", b: '2'", ""))
    cm = widgets.get("/api/v1/namespaces/default/configmaps/ssa")
    assert cm is not None
    assert cm["data"] == {"a": "1"}


def test_server_dry_run_changes_nothing(widgets: Cluster) -> None:
    widgets.apply(WIDGET)  # each test stands alone
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: '1'}\n"
    assert "created (server dry run)" in widgets.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=manifest
    )
    assert widgets.get("/api/v1/namespaces/default/configmaps/dry") is None
    before = widgets.get(f"{W}/w1")
    assert before is not None
    widgets.kubectl("patch", "widget", "w1", "--dry-run=server", "--type=merge", "-p", '{"spec":{"size":1}}')
    assert widgets.get(f"{W}/w1") == before


def test_watch_resumes_from_resource_version(widgets: Cluster) -> None:
    widgets.apply(WIDGET)  # each test stands alone
    listed = widgets.get(W)
    assert listed is not None
    rv = listed["metadata"]["resourceVersion"]
    widgets.kubectl("label", "widget", "w1", "color=blue")
    url = f"{widgets.url}{W}?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    with urllib.request.urlopen(url, timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert [e["type"] for e in events] == ["MODIFIED"]
    assert events[0]["object"]["metadata"]["labels"]["color"] == "blue"
    # a label selector turns "stopped matching" into DELETED
    url = f"{widgets.url}{W}?watch=1&labelSelector=color%3Dblue&timeoutSeconds=5"
    with urllib.request.urlopen(url, timeout=10) as resp:
        first = json.loads(resp.readline())
        widgets.kubectl("label", "widget", "w1", "color=red", "--overwrite")
        second = json.loads(resp.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "w1")
    assert (second["type"], second["object"]["metadata"]["labels"]["color"]) == ("DELETED", "red")
    # kubectl's own watch: the change arrives as a MODIFIED row
    watcher = subprocess.Popen(
        [KUBECTL, "get", "wd", "-w", "--output-watch-events", "--request-timeout=20s"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert "NAME" in watcher.stdout.readline()
        widgets.kubectl("label", "widget", "w1", "color=green", "--overwrite")
        seen: list[list[str]] = []
        while ["MODIFIED", "w1"] not in seen and len(seen) < 20:  # initial ADDED rows first
            seen.append(watcher.stdout.readline().split()[:2])
    finally:
        watcher.kill()
        watcher.wait()
    assert ["ADDED", "w1"] in seen
    assert ["MODIFIED", "w1"] in seen


def test_finalizers_and_garbage_collection(widgets: Cluster) -> None:
    widgets.apply(WIDGET)  # each test stands alone
    owner = widgets.get(f"{W}/w1")
    assert owner is not None
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w1", "uid": owner["metadata"]["uid"]}
    for name in ("dep-a", "dep-b"):
        widgets.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "ownerReferences": [ref]},
                }
            )
        )
    widgets.kubectl(
        "patch", "widget", "w1", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}'
    )
    widgets.kubectl("delete", "widget", "w1", "--wait=false")
    obj = widgets.get(f"{W}/w1")
    assert obj is not None
    assert obj["metadata"]["deletionTimestamp"]
    assert widgets.get("/api/v1/namespaces/default/configmaps/dep-a") is not None
    widgets.kubectl(
        "patch", "widget", "w1", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]'
    )
    wait_for(lambda: widgets.get(f"{W}/w1") is None, 5, "owner gone")
    wait_for(
        lambda: widgets.get("/api/v1/namespaces/default/configmaps/dep-a") is None, 5, "dependents collected"
    )

    # orphan: dependents stay, without the owner reference
    widgets.apply(WIDGET)
    owner = widgets.get(f"{W}/w1")
    assert owner is not None
    ref["uid"] = owner["metadata"]["uid"]
    widgets.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "orphan", "ownerReferences": [ref]},
            }
        )
    )
    widgets.kubectl("delete", "widget", "w1", "--cascade=orphan")
    cm = widgets.get("/api/v1/namespaces/default/configmaps/orphan")
    assert cm is not None
    assert "ownerReferences" not in cm["metadata"]

    # foreground: the owner waits for its dependents
    widgets.apply(WIDGET)
    owner = widgets.get(f"{W}/w1")
    assert owner is not None
    ref["uid"] = owner["metadata"]["uid"]
    widgets.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "fg", "ownerReferences": [ref], "finalizers": ["x/y"]},
            }
        )
    )
    widgets.kubectl("delete", "widget", "w1", "--cascade=foreground", "--wait=false")
    wait_for(
        lambda: (
            (widgets.get("/api/v1/namespaces/default/configmaps/fg") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        ),
        5,
        "dependent deleting",
    )
    assert widgets.get(f"{W}/w1") is not None
    widgets.kubectl("patch", "configmap", "fg", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: widgets.get(f"{W}/w1") is None, 5, "owner gone after its dependents")


def test_namespace_deletion_empties_it(fakekube: Cluster) -> None:
    fakekube.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n")
    fakekube.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: doomed}\n")
    fakekube.kubectl("delete", "namespace", "doomed", "--timeout=20s")
    assert fakekube.get("/api/v1/namespaces/doomed/configmaps/c") is None
    status, _ = fakekube.request("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "x"}})
    assert status == 404


OPERATOR = textwrap.dedent(
    """
    import kopf

    @kopf.on.create("example.com", "v1", "widgets")
    def create_fn(name, namespace, body, spec, patch, **_):
        child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-child"},
                 "data": {"size": str(spec["size"])}}
        kopf.adopt(child, owner=body)
        import kubernetes
        kubernetes.client.CoreV1Api().create_namespaced_config_map(namespace, child)
        patch.status["phase"] = "Ready"

    @kopf.on.update("example.com", "v1", "widgets", field="spec.size")
    def update_fn(name, namespace, new, **_):
        import kubernetes
        kubernetes.client.CoreV1Api().patch_namespaced_config_map(f"{name}-child", namespace, {"data": {"size": str(new)}})

    @kopf.on.delete("example.com", "v1", "widgets")
    def delete_fn(name, **_):
        kopf.info({"metadata": {"name": name}}, reason="Bye", message="deleted")
    """
)


def test_kopf_create_update_delete(widgets: Cluster, tmp_path: Path) -> None:
    import kopf

    operator = tmp_path / "widget_operator.py"
    operator.write_text(OPERATOR)
    widgets.kubectl("delete", "widget", "--all", "--wait=true")
    # a registry of its own, so the widget handlers do not stay behind for later operators in this process
    previous = kopf.get_default_registry()
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.set_default_registry(registry)
    try:
        _run_widget_operator(widgets, operator)
    finally:
        kopf.set_default_registry(previous)


def _run_widget_operator(widgets: Cluster, operator: Path) -> None:
    from kopf.testing import KopfRunner

    with KopfRunner(["run", "--standalone", "--namespace", "default", str(operator)], timeout=60) as runner:
        widgets.apply(WIDGET.replace("w1", "kw"))
        widgets.kubectl("wait", "--for=jsonpath={.status.phase}=Ready", "--timeout=20s", "widget/kw")
        obj = widgets.get(f"{W}/kw")
        assert obj is not None
        assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        child = widgets.get("/api/v1/namespaces/default/configmaps/kw-child")
        assert child is not None
        assert child["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
        widgets.kubectl("patch", "widget", "kw", "--type=merge", "-p", '{"spec":{"size":7}}')
        wait_for(
            lambda: (
                (widgets.get("/api/v1/namespaces/default/configmaps/kw-child") or {}).get("data")
                == {"size": "7"}
            ),
            20,
            "update handler",
        )
        widgets.kubectl("delete", "widget", "kw", "--timeout=20s")
        wait_for(
            lambda: widgets.get("/api/v1/namespaces/default/configmaps/kw-child") is None,
            10,
            "child collected",
        )
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert "Handler 'delete_fn' succeeded" in runner.output


def test_operator_manifests_and_examples_install(fakekube: Cluster) -> None:
    """``kubectl apply -k manifests`` installs the operator; the examples validate against the CRDs."""
    out = fakekube.kubectl("apply", "-k", str(REPO / "manifests"))
    assert "deployment.apps/restate-operator created" in out
    for crd in ("restateclusters", "restatedeployments", "subscriptions"):
        fakekube.kubectl("wait", "--for=condition=established", "--timeout=10s", f"crd/{crd}.restate.dev")
    out = fakekube.kubectl("apply", "-k", str(REPO / "manifests/examples"))
    assert out.count(" created") == 4, out
    rsd = fakekube.get("/apis/restate.dev/v1beta1/namespaces/default/restatedeployments/greeter")
    assert rsd is not None
    assert rsd["spec"]["deploymentMode"] == "replicaset"  # defaulted by the CRD's schema
    refused = fakekube.kubectl(
        "patch", "rsd", "greeter", "--type=merge", "-p", '{"spec":{"deploymentMode":"knative"}}', check=False
    )
    assert "deploymentMode is immutable" in refused
    fakekube.kubectl("delete", "-k", str(REPO / "manifests/examples"), "--wait=false")
    fakekube.kubectl("delete", "-k", str(REPO / "manifests"), "--ignore-not-found", "--timeout=30s")
