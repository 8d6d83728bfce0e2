"""`/metrics` on the node port of a live server, scraped after real SDK traffic.

Names are upstream's (restate-server 1.7); every metric a panel of the shipped Grafana dashboard
queries must have samples that match the panel's label filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from harness import Server, wait_until
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "helm"
    / "restate-operator"
    / "files"
    / "dashboards"
    / "restate-server.json"
)
# a metric selector in PromQL: name{matchers}; only our metrics (functions and labels never match)
_SELECTOR = re.compile(r"\b((?:restate|process)_[a-zA-Z0-9_]+)(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(server: Server) -> list[Sample]:
    resp = httpx.get(f"http://127.0.0.1:{server.node_port}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def _traffic(server: Server) -> None:
    for name in ("a", "b", "c"):
        assert server.call("Greeter/greet", name).status_code == 200
    assert server.call("Counter/k/add", 2).json() == 2
    assert server.call("Greeter/fail", "x").status_code == 409
    assert server.call("Greeter/flaky_once", "y").json() == "Hello y!"  # one failed, retried attempt
    assert server.call("Greeter/greet/send", "later").status_code == 202
    assert server.call("Greeter/nope", "x").status_code == 404  # a handler that does not exist
    assert server.query("SELECT id FROM sys_invocation")


def test_metrics_count_real_traffic_under_upstream_names(
    deployed: Server, request: pytest.FixtureRequest
) -> None:
    _traffic(deployed)
    # the send runs after its 202, and status counts are refreshed at most every 10s: wait for both
    wait_until(
        lambda: (
            value(scrape(deployed), "restate_invoker_invocation_tasks_total", status="completed") >= 7
            and value(scrape(deployed), "restate_invocations", status="completed") == 7
        ),
        timeout=30,
    )
    samples = scrape(deployed)

    def v(name: str, **labels: str) -> float:
        return value(samples, name, **labels)

    greeter = {"rpc_service": "Greeter", "rpc_type": "call"}
    assert v("restate_ingress_requests_total", status="completed", **greeter) == 4
    assert v("restate_ingress_requests_total", status="invocation_error", **greeter) == 1
    assert v("restate_ingress_requests_total", status="request_error", **greeter) == 1
    assert (
        v("restate_ingress_requests_total", status="completed", rpc_service="Greeter", rpc_type="send") == 1
    )
    assert v("restate_ingress_requests_total", status="admitted") >= 8
    assert v("restate_ingress_request_duration_seconds_count", **greeter) == 6
    assert v("restate_ingress_request_duration_seconds", quantile="0.99", **greeter) > 0

    assert v("restate_invoker_enqueue_total") == 7
    assert v("restate_invoker_invocation_tasks_total", status="started") == 8
    assert v("restate_invoker_invocation_tasks_total", status="completed") == 7
    assert v("restate_invoker_invocation_tasks_total", status="failed", transient="true") == 1
    assert v("restate_invoker_task_duration_seconds_count") == 8
    assert v("restate_invoker_concurrency_limit") == 1000
    http1 = request.node.callspec.params["deployed"] == "http1"
    kind = "Http/request-response" if http1 else "Http/bidi-stream"
    assert v("restate_invoker_client_requests_total", type=kind, status_code="200") == 8
    assert v("restate_invoker_sent_bytes_total") > 0
    assert v("restate_invoker_received_bytes_total") > 0

    assert v("restate_invocations", status="completed") == 7
    assert v("restate_num_partitions") == 8
    assert v("restate_num_active_partition_leaders") == 8
    assert v("restate_partition_is_leader") == 8
    assert v("restate_partition_applied_lsn") > 8  # every partition applied its leader announcement
    assert v("restate_partition_applied_lsn_lag", quantile="1.0") == 0

    assert v("restate_bifrost_localloglet_appends_total") > 0
    assert v("restate_bifrost_localloglet_append_duration_seconds_count") > 0
    assert v("restate_rocksdb_wal_file_sync_seconds_count", db="local-loglet") > 0
    assert v("restate_rocksdb_wal_synced_total", db="local-loglet") > 0
    assert v("restate_rocksdb_cur_size_all_mem_tables_bytes", db="db") > 0

    assert v("restate_admin_query_requests_total", status="200") >= 1
    assert v("restate_admin_query_duration_seconds_count") >= 1


def _selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    for match in _SELECTOR.finditer(expr):
        yield match.group(1), _MATCHER.findall(match.group(2) or "")


def _matches(sample: Sample, matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, wanted in matchers:
        if op == "=~":
            continue  # only the dashboard's `$cluster` variable, which Prometheus's relabelling adds
        have = sample.labels.get(label, "")
        if (op == "=" and have != wanted) or (op == "!=" and have == wanted):
            return False
    return True


@pytest.mark.parametrize("deployed", ["h2c"], indirect=True)
def test_every_dashboard_panel_has_samples_after_traffic(deployed: Server) -> None:
    _traffic(deployed)
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = [
        (panel["title"], name, matchers)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name, matchers in _selectors(target["expr"])
    ]
    assert len(wanted) >= len(dashboard["panels"])

    def missing() -> list[str]:
        samples = scrape(deployed)
        return [
            f"{title}: {name} {matchers}"
            for title, name, matchers in wanted
            if not any(s.name == name and _matches(s, matchers) for s in samples)
        ]

    try:
        wait_until(lambda: not missing(), timeout=15)
    except TimeoutError:
        pytest.fail(f"dashboard panels without samples: {missing()}")


def test_disable_prometheus_removes_the_endpoint(tmp_path: Path) -> None:
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_DISABLE_PROMETHEUS": "true"},
    )
    server.start()
    try:
        node = f"http://127.0.0.1:{server.node_port}"
        assert httpx.get(f"{node}/health", timeout=10).status_code == 200
        assert httpx.get(f"{node}/metrics", timeout=10).status_code == 404
    finally:
        server.stop()
