"""Settings from the environment, REST paths, error translation and the kube client over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client
from restate_operator import common
from restate_operator.kube import Conflict, Kube, KubeError, NotFound, object_path
from restate_operator.settings import OperatorSettings


def test_settings_defaults_match_upstream_addresses() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.cluster_dns == "cluster.local"
    assert settings.admin_url_template.format(
        cluster="demo", namespace="demo", dns="cluster.local", pod_ip=""
    ) == ("http://restate.demo.svc.cluster.local:9070")
    assert settings.resync_seconds == 10.0


def test_settings_read_prefixed_environment_variables() -> None:
    settings = OperatorSettings.from_env(
        {
            "RESTATE_OPERATOR_CLUSTER_DNS": "corp.local",
            "RESTATE_OPERATOR_ADMIN_URL_TEMPLATE": "http://{pod_ip}:9070",
            "RESTATE_OPERATOR_SERVICE_URL_TEMPLATE": "http://{pod_ip}:{port}",
            "RESTATE_OPERATOR_RESYNC_SECONDS": "0.5",
            "RESTATE_OPERATOR_FIELD_MANAGER": "",  # empty: keep the default
        }
    )
    assert settings.cluster_dns == "corp.local"
    assert settings.resync_seconds == 0.5
    assert settings.field_manager == "restate-operator"


def test_cluster_admin_url_template_with_pod_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "ready_pod_ip", lambda namespace, labels: "127.0.0.42")
    settings = OperatorSettings(admin_url_template="http://{pod_ip}:9070/{cluster}")
    assert common.cluster_admin_url("demo", settings) == "http://127.0.0.42:9070/demo"


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "Namespace", None, "demo"), "/api/v1/namespaces/demo"),
        (("v1", "ConfigMap", "demo", "restate-config"), "/api/v1/namespaces/demo/configmaps/restate-config"),
        (("apps/v1", "ReplicaSet", "default", None), "/apis/apps/v1/namespaces/default/replicasets"),
        (("restate.dev/v1", "RestateCluster", None, "demo"), "/apis/restate.dev/v1/restateclusters/demo"),
    ],
    ids=["cluster-scoped-core", "namespaced-core", "collection", "custom-cluster-scoped"],
)
def test_object_paths(args: tuple[str, str, str | None, str | None], path: str) -> None:
    assert object_path(*args) == path


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((self.command, self.path, self.headers.get("content-type", ""), body))
        status = {
            "/api/v1/namespaces/demo/configmaps/missing": 404,
            "/api/v1/namespaces/demo/configmaps/taken": 409,
        }.get(self.path.split("?")[0], 200)
        if self.path.startswith("/api/v1/namespaces/demo/configmaps/broken"):
            status = 422
        data = json.dumps(
            {"kind": "Status"} if status != 200 else {"metadata": {"name": "x"}, "items": []}
        ).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def kube_http() -> Iterator[Kube]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-apiserver", daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.seen.clear()
    try:
        yield Kube(field_manager="test-manager", api=client.ApiClient(configuration))
    finally:
        server.shutdown()


def test_kube_apply_is_server_side_apply(kube_http: Kube) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}}
    kube_http.apply(obj)
    method, path, content_type, body = _Handler.seen[-1]
    assert method == "PATCH"
    assert path == "/api/v1/namespaces/demo/configmaps/c?fieldManager=test-manager&force=true"
    assert content_type == "application/apply-patch+yaml"
    assert body == obj


def test_kube_merge_patch_list_and_delete(kube_http: Kube) -> None:
    kube_http.patch("apps/v1", "ReplicaSet", "default", "rs", {"spec": {"replicas": 0}})
    assert _Handler.seen[-1][2] == "application/merge-patch+json"
    kube_http.list("v1", "Pod", "default", {"a": "b", "c": "d"})
    assert _Handler.seen[-1][1] == "/api/v1/namespaces/default/pods?labelSelector=a%3Db%2Cc%3Dd"
    kube_http.delete("apps/v1", "StatefulSet", "demo", "restate", propagation="Orphan")
    assert _Handler.seen[-1][3]["propagationPolicy"] == "Orphan"


def test_kube_errors_are_translated(kube_http: Kube) -> None:
    assert kube_http.get("v1", "ConfigMap", "demo", "missing") is None
    kube_http.delete("v1", "ConfigMap", "demo", "missing")  # already gone: fine
    with pytest.raises(Conflict):
        kube_http.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "taken", "namespace": "demo"}}
        )
    with pytest.raises(KubeError) as info:
        kube_http.patch("v1", "ConfigMap", "demo", "broken", {})
    assert info.value.status == 422
    assert not isinstance(info.value, NotFound)


def test_operator_command_line_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "restate_operator", "--help"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "--standalone" in out
    assert "--namespace" in out
