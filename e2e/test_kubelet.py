"""The test kubelet: StatefulSets and ReplicaSets become local processes that turn Ready."""

from __future__ import annotations

import urllib.request
from typing import Any

from .conftest import Cluster, Kubelet, wait_for
from .kubelet import dns

NS = "kubelet-test"

STATEFULSET = """
apiVersion: v1
kind: Namespace
metadata: {name: kubelet-test}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-content, namespace: kubelet-test}
data:
  hello.txt: "served from $(ignored) /content"
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: kubelet-test}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: kubelet-test}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: kubelet-test}
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: python:3.11
          command: [python, -m, http.server, "$(PORT)", --directory, /content]
          env:
            - {name: PORT, value: "8000"}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - {name: GREETING, value: "hi $(POD_NAME)"}
          ports: [{name: http, containerPort: 8000}]
          readinessProbe:
            httpGet: {path: /hello.txt, port: http}
            periodSeconds: 10
          volumeMounts:
            - {name: content, mountPath: /content}
            - {name: data, mountPath: /data}
      volumes:
        - name: content
          configMap: {name: web-content}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
"""


def _sts(cluster: Cluster) -> dict[str, Any]:
    sts = cluster.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/web")
    assert sts is not None
    return sts


def _pods(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    found = cluster.get(f"/api/v1/namespaces/{NS}/pods?labelSelector={selector}")
    assert found is not None
    return [p for p in found["items"] if not p["metadata"].get("deletionTimestamp")]


def _http(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_statefulset_pods_run_become_ready_and_roll(fakekube: Cluster, kubelet: Kubelet) -> None:
    fakekube.apply(STATEFULSET)
    wait_for(lambda: _sts(fakekube).get("status", {}).get("readyReplicas") == 2, 30, "2 ready replicas")
    pods = {p["metadata"]["name"]: p for p in _pods(fakekube, "app=web")}
    assert set(pods) == {"web-0", "web-1"}
    ips = {p["status"]["podIP"] for p in pods.values()}
    assert len(ips) == 2
    assert all(ip.startswith(kubelet.pod_prefix) for ip in ips)
    # each pod serves its ConfigMap volume on its own address; mount paths in the text were rewritten
    ip0 = pods["web-0"]["status"]["podIP"]
    served = _http(f"http://{ip0}:8000/hello.txt")
    assert served.startswith("served from $(ignored) /")
    assert served.endswith("/web-0-" + pods["web-0"]["metadata"]["uid"][:8] + "/volumes/content")
    # kubectl's columns, printed by fakekube
    wide = fakekube.kubectl("get", "pods", "-n", NS, "-o", "wide")
    assert wide.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert any(line.split()[:3] == ["web-0", "1/1", "Running"] and ip0 in line for line in wide.splitlines())
    assert "2/2" in fakekube.kubectl("get", "statefulset", "web", "-n", NS)
    # kubectl logs, through fakekube to the kubelet's endpoint
    assert "GET /hello.txt" in fakekube.kubectl("logs", "-n", NS, "web-0")
    assert len(fakekube.kubectl("logs", "-n", NS, "web-0", "--tail=1").splitlines()) == 1
    # DNS: per-pod names through the headless service, and the ClusterIP for the other one
    assert dns.lookup(kubelet.hosts_file, "web-0.web", NS) == [ip0]
    cluster_ip = fakekube.get(f"/api/v1/namespaces/{NS}/services/web-lb")["spec"]["clusterIP"]  # type: ignore[index]
    assert dns.lookup(kubelet.hosts_file, f"web-lb.{NS}.svc.cluster.local", "default") == [cluster_ip]
    assert "served from" in _http(f"http://{cluster_ip}:80/hello.txt")
    endpoints = wait_for(
        lambda: (fakekube.get(f"/api/v1/namespaces/{NS}/endpoints/web") or {}).get("subsets"), 10, "endpoints"
    )
    assert {a["ip"] for a in endpoints[0]["addresses"]} == ips
    # PVCs from the claim template
    assert fakekube.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-web-0") is not None

    # scale down: the highest ordinal goes
    fakekube.kubectl("scale", "-n", NS, "statefulset/web", "--replicas=1")
    wait_for(
        lambda: [p["metadata"]["name"] for p in _pods(fakekube, "app=web")] == ["web-0"], 30, "scale down"
    )
    wait_for(lambda: _sts(fakekube)["status"].get("replicas") == 1, 10, "status.replicas 1")

    # template change: the pod is replaced with the new revision
    old_uid = _pods(fakekube, "app=web")[0]["metadata"]["uid"]
    fakekube.kubectl(
        "patch",
        "-n",
        NS,
        "statefulset/web",
        "--type=merge",
        "-p",
        '{"spec":{"template":{"metadata":{"annotations":{"restart":"1"}}}}}',
    )

    def rolled() -> bool:
        sts = _sts(fakekube)
        pods = _pods(fakekube, "app=web")
        return (
            len(pods) == 1
            and pods[0]["metadata"]["uid"] != old_uid
            and sts["status"].get("readyReplicas") == 1
            and sts["status"].get("currentRevision") == sts["status"].get("updateRevision")
            and pods[0]["metadata"]["labels"]["controller-revision-hash"] == sts["status"]["updateRevision"]
        )

    wait_for(rolled, 40, "rolling restart")

    # deleting the namespace stops everything
    fakekube.kubectl("delete", "namespace", NS, "--timeout=60s")
    wait_for(lambda: fakekube.get(f"/api/v1/namespaces/{NS}") is None, 30, "namespace gone")


REPLICASET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: echo, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: echo
          image: ignored
          command: [python, -m, http.server, "8080", --bind, "$(POD_IP)"]
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
          readinessProbe:
            tcpSocket: {port: 8080}
"""


def test_replicaset_scales_both_ways(fakekube: Cluster, kubelet: Kubelet) -> None:
    fakekube.apply(REPLICASET)
    rs_path = "/apis/apps/v1/namespaces/default/replicasets/echo"
    wait_for(lambda: (fakekube.get(rs_path) or {}).get("status", {}).get("readyReplicas") == 2, 30, "2 ready")
    found = fakekube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Decho")
    assert found is not None
    names = [p["metadata"]["name"] for p in found["items"]]
    assert len(names) == 2
    assert all(n.startswith("echo-") and len(n) == len("echo-") + 5 for n in names)
    fakekube.kubectl("scale", "replicaset/echo", "--replicas=0")
    wait_for(
        lambda: (
            not (fakekube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Decho") or {}).get("items")
        ),
        30,
        "no pods",
    )
    fakekube.kubectl("delete", "replicaset/echo")
