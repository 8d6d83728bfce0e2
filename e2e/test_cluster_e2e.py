"""Issue 9, operator side, end to end: a RestateCluster of three replicas on an etcd the operator runs.

One scenario, one step per test, in order, on its own fakekube and test kubelet; the operator runs
in-process (``scenario.operator_running``). The kubelet runs the official etcd image as the local
``etcd`` binary, each member on its own loopback pod IP (``kubelet/images.py``).

1. ``kubectl apply`` ``manifests/examples/restatecluster-replicated.yaml`` (three replicas, a provisioned
   etcd; snapshots go to the nodes' volumes, as there is no S3 here) → the three etcd pods become Ready
   and form ONE etcd cluster: every member's ``/health`` is true and every member lists the same three
   members (by pod DNS name) under the same cluster id.
2. The servers waited for etcd: the RestateCluster reported ``Ready=False/WaitingForEtcd``, and the
   servers' StatefulSet was created only after etcd's reported three ready members (fakekube's global
   resourceVersion orders the two). The three restate pods then run with the cluster env: in their pod
   specs, and in their processes' environment with the downward API expanded per pod.
3. The conditions reflect etcd: ``EtcdReady=True``, and the cluster becomes Ready.
4. An etcd member's pod is deleted: the StatefulSet re-creates it on its volume, it rejoins the same
   cluster (same member id), and ``EtcdReady`` is True again.
4c. The servers share one state: a deployment registered through the operator is known to every node's
   admin API, and a counter called through each node's ingress in turn is exact.
5. Deleting the RestateCluster removes etcd and the servers: namespace, pods and processes.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, Cluster, Kubelet, tail, wait_for
from .scenario import http, operator_running, pod_processes

EXAMPLE = REPO / "manifests/examples/restatecluster-replicated.yaml"
SNAPSHOTS = "file:///restate-data/snapshots"
"""The example's S3 bucket does not exist here; snapshots go to each node's volume instead."""


def _manifest() -> tuple[str, dict[str, Any]]:
    example = yaml.safe_load(EXAMPLE.read_text())
    example["spec"]["snapshots"]["destination"] = SNAPSHOTS
    return yaml.safe_dump(example), example


MANIFEST, SPEC = _manifest()
CLUSTER = SPEC["metadata"]["name"]
MEMBERS = [f"etcd-{n}" for n in range(SPEC["spec"]["cluster"]["etcd"]["provision"]["replicas"])]
SERVERS = [f"restate-{n}" for n in range(SPEC["spec"]["compute"]["replicas"])]
CLUSTER_PATH = f"/apis/restate.dev/v1/restateclusters/{CLUSTER}"


def member_host(member: str) -> str:
    return f"{member}.etcd.{CLUSTER}.svc.cluster.local"


@dataclass
class World:
    cluster: Cluster
    kubelet: Kubelet
    operator_log: Path
    facts: dict[str, Any] = field(default_factory=dict)

    def diagnostics(self) -> str:
        operator = [ln for ln in tail(self.operator_log, 3000).splitlines() if " DEBUG " not in ln]
        return "\n".join(
            [
                "--- pods",
                self.kubelet.pod_logs(CLUSTER, "etcd", 15),
                self.kubelet.pod_logs(CLUSTER, "restate", 15),
                "--- kubelet log",
                tail(self.kubelet.log, 20),
                "--- operator log (no DEBUG)",
                *operator[-30:],
            ]
        )

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_for(condition, timeout, what, interval=0.25, diagnostics=self.diagnostics)

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.cluster.get(f"/api/v1/namespaces/{CLUSTER}/pods/{name}")

    def ready_ip(self, name: str) -> str | None:
        """The pod's IP once it is Ready."""
        status = (self.pod(name) or {}).get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        return status.get("podIP") if ready else None

    def conditions(self) -> dict[str, tuple[str, str]]:
        status = (self.cluster.get(CLUSTER_PATH) or {}).get("status") or {}
        return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}

    def history(self, path: str, since: str) -> list[dict[str, Any]]:
        """Every watch event of ``path`` after resourceVersion ``since`` (fakekube keeps the history)."""
        url = f"{self.cluster.url}{path}?watch=1&resourceVersion={since}&timeoutSeconds=1"
        with urllib.request.urlopen(url, timeout=10) as resp:
            events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
        return [e for e in events if e.get("type") in ("ADDED", "MODIFIED", "DELETED")]


@pytest.fixture(scope="module")
def world(fakekube: Cluster, kubelet: Kubelet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_running(fakekube, kubelet, log_path):
        yield World(cluster=fakekube, kubelet=kubelet, operator_log=log_path)


def member_list(ip: str) -> dict[str, Any]:
    """etcd's member list through its v3 JSON gateway on one member."""
    status, body = http("POST", f"http://{ip}:2379/v3/cluster/member/list", {}, timeout=5)
    assert status == 200, body
    result: dict[str, Any] = body
    return result


def test_1_etcd_members_form_one_cluster(world: World) -> None:
    created = json.loads(world.cluster.kubectl("apply", "-o", "json", "-f", "-", stdin=MANIFEST))
    world.facts["since"] = created["metadata"]["resourceVersion"]
    ips = {m: world.wait(lambda m=m: world.ready_ip(m), 90, f"etcd pod {m} Ready") for m in MEMBERS}
    assert len(set(ips.values())) == 3, f"each member has its own loopback IP: {ips}"
    views = {}
    for member, ip in ips.items():
        assert http("GET", f"http://{ip}:2379/health", timeout=5) == (200, {"health": "true"}), member
        views[member] = member_list(ip)
    cluster_ids = {view["header"]["cluster_id"] for view in views.values()}
    assert len(cluster_ids) == 1, f"three members, one cluster: {views}"
    for member, view in views.items():
        listed = {m["name"]: m for m in view["members"]}
        assert set(listed) == set(MEMBERS), (member, view)
        for name, entry in listed.items():
            assert entry["peerURLs"] == [f"http://{member_host(name)}:2380"]
            assert entry["clientURLs"] == [f"http://{member_host(name)}:2379"]
    world.facts["member_ids"] = {m["name"]: m["ID"] for m in views["etcd-0"]["members"]}


def test_2_servers_waited_for_etcd_and_run_with_the_cluster_env(world: World) -> None:
    sts_path = f"/apis/apps/v1/namespaces/{CLUSTER}/statefulsets"
    world.wait(lambda: world.cluster.get(f"{sts_path}/restate"), 60, "the servers' StatefulSet")
    since = world.facts["since"]
    reasons = [
        c["reason"]
        for e in world.history("/apis/restate.dev/v1/restateclusters", since)
        for c in (e["object"].get("status") or {}).get("conditions") or []
        if c["type"] == "Ready"
    ]
    assert "WaitingForEtcd" in reasons, reasons
    events = world.history(sts_path, since)
    etcd_ready = min(
        int(e["object"]["metadata"]["resourceVersion"])
        for e in events
        if e["object"]["metadata"]["name"] == "etcd"
        and (e["object"].get("status") or {}).get("readyReplicas") == 3
    )
    servers_created = min(
        int(e["object"]["metadata"]["resourceVersion"])
        for e in events
        if e["object"]["metadata"]["name"] == "restate" and e["type"] == "ADDED"
    )
    assert etcd_ready < servers_created, "the servers' StatefulSet was created before etcd was ready"

    addresses = json.dumps([f"http://{member_host(m)}:2379" for m in MEMBERS], separators=(",", ":"))
    expected = {
        "RESTATE_METADATA_CLIENT__TYPE": "etcd",
        "RESTATE_METADATA_CLIENT__ADDRESSES": addresses,
        "RESTATE_BIFROST__DEFAULT_PROVIDER": "etcd",
        "RESTATE_DEFAULT_NUM_PARTITIONS": str(SPEC["spec"]["cluster"]["partitions"]),
        "RESTATE_DEFAULT_REPLICATION": str(SPEC["spec"]["cluster"]["replication"]),
        "RESTATE_AUTO_PROVISION": "true",
        "RESTATE_CLUSTER_NAME": CLUSTER,
        "RESTATE_BIND_ADDRESS": "0.0.0.0:5122",
        "RESTATE_WORKER__SNAPSHOTS__DESTINATION": SNAPSHOTS,
        "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": str(
            SPEC["spec"]["snapshots"]["snapshotIntervalNumRecords"]
        ),
    }
    for server in SERVERS:
        pod = world.wait(
            lambda s=server: (p := world.pod(s)) and p["status"].get("containerStatuses") and p, 60, server
        )
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert {k: env.get(k) for k in expected} == expected, server
        pid = world.wait(
            lambda s=server: (
                (world.pod(s) or {}).get("status", {}).get("containerStatuses", [{}])[0].get("containerID")
            ),
            60,
            f"{server} process",
        ).removeprefix("local://")
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
        )
        assert environ["RESTATE_NODE_NAME"] == server
        assert (
            environ["RESTATE_ADVERTISED_ADDRESS"]
            == f"http://{server}.restate-cluster.{CLUSTER}.svc.cluster.local:5122"
        )
        assert environ["RESTATE_METADATA_CLIENT__ADDRESSES"] == addresses
    sts = world.cluster.get(f"{sts_path}/restate")
    assert sts is not None
    assert (sts["spec"]["replicas"], sts["spec"]["podManagementPolicy"]) == (3, "Parallel")


def test_3_conditions_reflect_etcd_and_the_cluster_becomes_ready(world: World) -> None:
    world.wait(lambda: world.conditions().get("EtcdReady") == ("True", "Reconciled"), 60, "EtcdReady=True")
    world.cluster.kubectl(
        "wait", "--for=condition=Ready", "--timeout=120s", f"restatecluster/{CLUSTER}", timeout=150
    )
    for server in SERVERS:
        ip = world.ready_ip(server)
        assert ip, server
        assert http("GET", f"http://{ip}:8080/restate/health", timeout=5)[0] == 200, server


def test_4_a_replaced_etcd_member_rejoins_with_its_data(world: World) -> None:
    before = world.pod("etcd-1")
    assert before is not None
    # --wait=false: the StatefulSet re-creates etcd-1 within milliseconds, and kubectl's wait (list, then
    # watch for DELETED) can list the new pod of the same name and then wait for an event already past.
    world.cluster.kubectl("delete", "pod", "etcd-1", "-n", CLUSTER, "--wait=false")

    def replaced_and_ready() -> str | None:
        pod = world.pod("etcd-1") or {}
        fresh = pod.get("metadata", {}).get("uid") not in (None, before["metadata"]["uid"])
        return world.ready_ip("etcd-1") if fresh else None

    ip = world.wait(replaced_and_ready, 90, "etcd-1 re-created and Ready")
    view = member_list(ip)
    assert {m["name"]: m["ID"] for m in view["members"]} == world.facts["member_ids"], (
        "same members, same ids"
    )
    world.wait(
        lambda: world.conditions().get("EtcdReady") == ("True", "Reconciled"), 60, "EtcdReady=True again"
    )


SERVICES = f"""
apiVersion: restate.dev/v1beta1
kind: RestateDeployment
metadata: {{name: services, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: services}}}}
  template:
    metadata: {{labels: {{app: services}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: services
          image: restate-sdk-services:test
          command: [python, tests/services/serve.py, --port, "9080"]
          ports: [{{name: restate, containerPort: 9080}}]
          readinessProbe:
            tcpSocket: {{port: 9080}}
  restate:
    register: {{cluster: {CLUSTER}}}
    deletionPolicy: Force
"""


def _deployments_on(ip: str) -> set[str]:
    status, body = http("GET", f"http://{ip}:9070/deployments", timeout=10)
    return {d["id"] for d in body["deployments"]} if status == 200 else set()


def test_4c_cluster_serves_one_state(world: World) -> None:
    world.cluster.apply(SERVICES)
    path = "/apis/restate.dev/v1beta1/namespaces/default/restatedeployments/services"
    deployment_id = world.wait(
        lambda: (world.cluster.get(path) or {}).get("status", {}).get("deploymentId"), 120, "deploymentId"
    )
    ips = {server: world.ready_ip(server) for server in SERVERS}
    assert all(ips.values()), ips
    for server, ip in ips.items():  # the registration is cluster metadata: every node's admin knows it
        world.wait(lambda ip=ip: deployment_id in _deployments_on(ip), 30, f"{server} lists {deployment_id}")
    total = 0
    for round_ in range(2):
        for server, ip in ips.items():  # one object, called through each node's own ingress in turn
            total += 1
            status, answer = http("POST", f"http://{ip}:8080/Counter/shared/add", 1, timeout=60)
            assert (status, answer) == (200, total), f"round {round_}, {server}: {status} {answer}"
    for server, ip in ips.items():
        assert http("POST", f"http://{ip}:8080/Counter/shared/get", timeout=60) == (200, total), server
    world.cluster.kubectl("delete", "restatedeployment", "services", "-n", "default", "--timeout=120s")


def test_5_deleting_the_cluster_removes_etcd_and_servers(world: World) -> None:
    cluster = world.cluster
    cluster.kubectl("delete", "restatecluster", CLUSTER, "--timeout=120s", timeout=150)
    world.wait(lambda: cluster.get(f"/api/v1/namespaces/{CLUSTER}") is None, 60, f"namespace {CLUSTER} gone")
    for path in ("/api/v1/pods", "/apis/apps/v1/statefulsets"):
        world.wait(
            lambda p=path: (listed := cluster.get(p)) is not None and not listed["items"], 60, f"{path} empty"
        )
    world.wait(lambda: not pod_processes(world.kubelet.pod_prefix), 30, "pod processes stopped")
