"""RestateCluster topologies rendered: one node, a cluster on external or provisioned etcd, and a refusal.

Every object of every topology validates against Kubernetes 1.37's schemas; the env each server gets is
the interface the server reads (upstream's ``RESTATE_*`` keys).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from op_helpers import (
    FULL_CLUSTER,
    MINIMAL_CLUSTER,
    PROVISIONED_CLUSTER,
    REFUSED_CLUSTER,
    validate_custom,
    validate_k8s,
)
from restate_operator import names
from restate_operator.cluster import legacy_scale_down
from restate_operator.models import DEFAULT_ETCD_IMAGE, ClusterSpec, SpecError, Topology
from restate_operator.render import render_cluster
from restate_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
EXTERNAL_CLUSTER: dict[str, Any] = {
    **REFUSED_CLUSTER,
    "cluster": {"etcd": {"endpoints": ["http://etcd-a.infra:2379", "https://etcd-b.infra:2379"]}},
}
TOPOLOGIES = {
    "single-node": (MINIMAL_CLUSTER, Topology.SINGLE_NODE),
    "external-etcd": (EXTERNAL_CLUSTER, Topology.ETCD),
    "provisioned-etcd": (PROVISIONED_CLUSTER, Topology.ETCD),
    "refused": (REFUSED_CLUSTER, Topology.REFUSED),
}
SERVER_OBJECTS = {
    ("Namespace", "demo"),
    ("ServiceAccount", "restate"),
    ("ConfigMap", "restate-config"),
    ("Service", "restate"),
    ("Service", "restate-cluster"),
    ("StatefulSet", "restate"),
    ("PodDisruptionBudget", "restate"),
    ("NetworkPolicy", "deny-all"),
    ("NetworkPolicy", "allow-egress-to-dns"),
    ("NetworkPolicy", "allow-restate-egress-to-public-internet"),
    ("NetworkPolicy", "allow-admin-access"),
    ("NetworkPolicy", "allow-node-access"),
    ("NetworkPolicy", "allow-restate-egress"),
}
ETCD_OBJECTS = {
    ("Service", "etcd"),
    ("Service", "etcd-client"),
    ("StatefulSet", "etcd"),
    ("PodDisruptionBudget", "etcd"),
    ("NetworkPolicy", "allow-etcd-access"),
    ("NetworkPolicy", "allow-etcd-egress"),
}
CLUSTER_ENV_NAMES = {
    "RESTATE_BIND_ADDRESS",
    "RESTATE_INGRESS__BIND_ADDRESS",
    "RESTATE_ADMIN__BIND_ADDRESS",
    "RESTATE_METADATA_CLIENT__TYPE",
    "RESTATE_METADATA_CLIENT__ADDRESSES",
    "RESTATE_BIFROST__DEFAULT_PROVIDER",
    "RESTATE_DEFAULT_NUM_PARTITIONS",
    "RESTATE_DEFAULT_REPLICATION",
    "RESTATE_AUTO_PROVISION",
    "RESTATE_WORKER__SNAPSHOTS__DESTINATION",
    "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS",
}
MEMBERS = [f"etcd-{n}.etcd.demo.svc.cluster.local" for n in range(3)]


def render(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in render_cluster(ClusterSpec.parse("demo", spec), SETTINGS)
    }


def server_env(spec: dict[str, Any]) -> dict[str, Any]:
    container = render(spec)[("StatefulSet", "restate")]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def etcd_container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = render(spec)[("StatefulSet", "etcd")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


@pytest.mark.parametrize(("spec", "topology"), TOPOLOGIES.values(), ids=list(TOPOLOGIES))
def test_topology_follows_replicas_and_etcd(spec: dict[str, Any], topology: Topology) -> None:
    assert ClusterSpec.parse("demo", spec).topology is topology


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("single-node", SERVER_OBJECTS),
        ("external-etcd", SERVER_OBJECTS),
        ("provisioned-etcd", SERVER_OBJECTS | ETCD_OBJECTS),
        ("refused", set()),
    ],
    ids=["single-node", "external-etcd", "provisioned-etcd", "refused"],
)
def test_topology_renders_exactly_its_objects_valid_for_kubernetes(name: str, expected: set[Any]) -> None:
    spec, _ = TOPOLOGIES[name]
    validate_custom({"apiVersion": "restate.dev/v1", "kind": "RestateCluster", "metadata": {}, "spec": spec})
    objects = render_cluster(ClusterSpec.parse("demo", spec), SETTINGS)
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == expected
    for obj in objects:
        validate_k8s(obj)
    if objects:
        assert objects[0]["kind"] == "Namespace", "namespaced objects need their namespace first"
        kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
        if ("StatefulSet", "etcd") in kinds:
            assert kinds.index(("StatefulSet", "etcd")) < kinds.index(("StatefulSet", "restate"))


def test_single_node_keeps_todays_env_and_probe() -> None:
    env = server_env(MINIMAL_CLUSTER)
    assert not CLUSTER_ENV_NAMES & set(env), "a single node runs with the embedded metadata store and log"
    sts = render(MINIMAL_CLUSTER)[("StatefulSet", "restate")]
    assert sts["spec"]["replicas"] == 1
    probe = sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": 9070}


def test_external_etcd_cluster_env_is_the_server_interface() -> None:
    env = server_env(EXTERNAL_CLUSTER)
    assert {k: env[k] for k in CLUSTER_ENV_NAMES if k in env} == {
        "RESTATE_BIND_ADDRESS": "0.0.0.0:5122",
        "RESTATE_INGRESS__BIND_ADDRESS": "0.0.0.0:8080",
        "RESTATE_ADMIN__BIND_ADDRESS": "0.0.0.0:9070",
        "RESTATE_METADATA_CLIENT__TYPE": "etcd",
        "RESTATE_METADATA_CLIENT__ADDRESSES": '["http://etcd-a.infra:2379","https://etcd-b.infra:2379"]',
        "RESTATE_BIFROST__DEFAULT_PROVIDER": "etcd",
        "RESTATE_DEFAULT_REPLICATION": "2",
        "RESTATE_AUTO_PROVISION": "true",
    }
    assert env["RESTATE_NODE_NAME"] == "$(POD_NAME)"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert (
        env["RESTATE_ADVERTISED_ADDRESS"]
        == "http://$(POD_NAME).restate-cluster.$(POD_NAMESPACE).svc.cluster.local:5122"
    )
    assert env["RESTATE_CLUSTER_NAME"] == "demo"
    assert env["RESTATE_BASE_DIR"] == "/restate-data"


def test_cluster_servers_start_together_and_are_ready_when_ingress_serves() -> None:
    objects = render(EXTERNAL_CLUSTER)
    sts = objects[("StatefulSet", "restate")]["spec"]
    assert sts["replicas"] == 3
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["serviceName"] == "restate-cluster"
    probe = sts["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/restate/health", "port": 8080}
    headless = objects[("Service", "restate-cluster")]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert [(p["name"], p["port"]) for p in headless["ports"]] == [("node", 5122)]
    assert ("Service", "etcd") not in objects, "external etcd: nothing of etcd is rendered"


def test_provisioned_etcd_is_one_cluster_of_three_members_from_the_official_image() -> None:
    objects = render(PROVISIONED_CLUSTER)
    sts = objects[("StatefulSet", "etcd")]["spec"]
    assert (sts["replicas"], sts["podManagementPolicy"], sts["serviceName"]) == (3, "Parallel", "etcd")
    container = etcd_container(PROVISIONED_CLUSTER)
    assert container["image"] == DEFAULT_ETCD_IMAGE
    assert DEFAULT_ETCD_IMAGE.startswith("quay.io/coreos/etcd:v3.5.")
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert args["initial-cluster"] == ",".join(f"etcd-{n}=http://{m}:2380" for n, m in enumerate(MEMBERS))
    assert args["initial-cluster-state"] == "new"
    assert args["name"] == "$(POD_NAME)"
    assert args["initial-advertise-peer-urls"] == "http://$(POD_NAME).etcd.demo.svc.cluster.local:2380"
    assert args["advertise-client-urls"] == "http://$(POD_NAME).etcd.demo.svc.cluster.local:2379"
    assert args["listen-client-urls"] == "http://0.0.0.0:2379"
    assert args["data-dir"].startswith(container["volumeMounts"][0]["mountPath"] + "/")
    assert int(args["quota-backend-bytes"]) == 6 * 2**30  # 3/4 of the default 8 GiB volume
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 2379}
    assert container["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    anti = sts["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"] == {
        "matchLabels": sts["selector"]["matchLabels"]
    }
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == str(8 * 2**30)
    headless = objects[("Service", "etcd")]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True, "members meet before any of them is ready"
    assert {p["name"]: p["port"] for p in headless["ports"]} == {"client": 2379, "peer": 2380}
    assert objects[("Service", "etcd-client")]["spec"]["ports"][0]["port"] == 2379


def test_provisioned_etcd_pods_are_not_selected_by_the_servers_services() -> None:
    objects = render(PROVISIONED_CLUSTER)
    etcd_labels = objects[("StatefulSet", "etcd")]["spec"]["template"]["metadata"]["labels"]
    for service in ("restate", "restate-cluster"):
        selector = objects[("Service", service)]["spec"]["selector"]
        assert not all(etcd_labels.get(k) == v for k, v in selector.items()), service
    assert etcd_labels[names.CLUSTER_LABEL] == "demo"


def test_provisioned_etcd_servers_list_every_member() -> None:
    env = server_env(PROVISIONED_CLUSTER)
    assert json.loads(env["RESTATE_METADATA_CLIENT__ADDRESSES"]) == [f"http://{m}:2379" for m in MEMBERS]
    assert env["RESTATE_METADATA_CLIENT__TYPE"] == "etcd"


def test_provisioned_etcd_network_policies_let_servers_and_members_through() -> None:
    objects = render(PROVISIONED_CLUSTER)
    etcd = {"matchLabels": objects[("StatefulSet", "etcd")]["spec"]["selector"]["matchLabels"]}
    servers = {"matchLabels": objects[("StatefulSet", "restate")]["spec"]["selector"]["matchLabels"]}
    access = objects[("NetworkPolicy", "allow-etcd-access")]["spec"]
    assert access["podSelector"] == etcd
    rules = [(r["from"][0]["podSelector"], sorted(p["port"] for p in r["ports"])) for r in access["ingress"]]
    assert rules == [(servers, [2379]), (etcd, [2379, 2380])]
    egress = objects[("NetworkPolicy", "allow-restate-egress")]["spec"]["egress"]
    assert {"to": [{"podSelector": etcd}], "ports": [{"port": 2379, "protocol": "TCP"}]} in egress
    members = objects[("NetworkPolicy", "allow-etcd-egress")]["spec"]["egress"]
    assert members[0]["to"] == [{"podSelector": etcd}]


def test_provisioned_etcd_fields_reach_the_statefulset() -> None:
    spec = copy.deepcopy(PROVISIONED_CLUSTER)
    spec["cluster"]["etcd"]["provision"] = {
        "replicas": 5,
        "image": "registry.k8s.io/etcd:3.5.17-0",
        "storageRequestBytes": 2**30,
        "storageClassName": "fast",
        "resources": {"requests": {"cpu": "250m"}},
    }
    sts = render(spec)[("StatefulSet", "etcd")]["spec"]
    container = sts["template"]["spec"]["containers"][0]
    assert (sts["replicas"], container["image"]) == (5, "registry.k8s.io/etcd:3.5.17-0")
    assert container["resources"] == {"requests": {"cpu": "250m"}}
    assert sts["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    assert f"--quota-backend-bytes={3 * 2**28}" in container["args"]
    assert sum(a.count("=http://") for a in container["args"] if a.startswith("--initial-cluster=")) == 5


@pytest.mark.parametrize(
    ("snapshots", "config", "expected"),
    [
        (
            {"destination": "s3://bucket/snaps", "snapshotIntervalNumRecords": 500},
            "",
            ("s3://bucket/snaps", "500"),
        ),
        (
            None,
            '[worker.snapshots]\ndestination = "file:///restate-data/snaps"\nsnapshot-interval-num-records = 7\n',
            ("file:///restate-data/snaps", "7"),
        ),
        (None, "", None),
    ],
    ids=["dedicated-fields", "config-toml", "none"],
)
def test_cluster_snapshot_settings_reach_the_server_env(
    snapshots: dict[str, Any] | None, config: str, expected: tuple[str, str] | None
) -> None:
    spec = {**PROVISIONED_CLUSTER, "config": config}
    if snapshots:
        spec["snapshots"] = snapshots
    env = server_env(spec)
    got = (
        env.get("RESTATE_WORKER__SNAPSHOTS__DESTINATION"),
        env.get("RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS"),
    )
    assert got == (expected or (None, None))


@pytest.mark.parametrize(
    ("replicas", "cluster", "replication", "auto_provision", "partitions"),
    [
        (1, {}, "1", "true", None),
        (3, {}, "2", "true", None),
        (5, {"replication": 3, "partitions": 16}, "3", "true", "16"),
        (3, {"autoProvision": False}, "2", "false", None),
    ],
    ids=["one-node", "three-nodes", "from-spec", "provisioned-by-hand"],
)
def test_cluster_replication_partitions_and_provisioning(
    replicas: int, cluster: dict[str, Any], replication: str, auto_provision: str, partitions: str | None
) -> None:
    spec = {
        **PROVISIONED_CLUSTER,
        "compute": {**PROVISIONED_CLUSTER["compute"], "replicas": replicas},
        "cluster": {**cluster, "etcd": {"provision": {}}},
    }
    env = server_env(spec)
    assert env["RESTATE_DEFAULT_REPLICATION"] == replication
    assert env["RESTATE_AUTO_PROVISION"] == auto_provision
    assert env.get("RESTATE_DEFAULT_NUM_PARTITIONS") == partitions


def test_refusal_names_the_fields_that_fix_it() -> None:
    spec = ClusterSpec.parse("demo", REFUSED_CLUSTER)
    message = spec.refusal()
    for field in ("compute.replicas", "spec.cluster.etcd.endpoints", "spec.cluster.etcd.provision"):
        assert field in message
    assert render_cluster(spec, SETTINGS) == [], "a refused spec creates and changes nothing"


def _legacy_statefulset(*, replicas: int, clustered: bool) -> dict[str, Any]:
    spec = EXTERNAL_CLUSTER if clustered else MINIMAL_CLUSTER
    sts = render(spec)[("StatefulSet", "restate")]
    sts["spec"]["replicas"] = replicas
    return sts


def test_refused_cluster_stops_unrelated_servers_an_older_operator_left() -> None:
    legacy = _legacy_statefulset(replicas=3, clustered=False)
    patch = legacy_scale_down(legacy)
    assert patch == {"spec": {"replicas": 1}}
    legacy["spec"].update(patch["spec"])
    validate_k8s(legacy)
    assert legacy_scale_down(_legacy_statefulset(replicas=1, clustered=False)) is None
    assert legacy_scale_down(_legacy_statefulset(replicas=3, clustered=True)) is None, (
        "a cluster is left alone"
    )
    assert legacy_scale_down(None) is None


@pytest.mark.parametrize(
    ("etcd", "match"),
    [
        ({"endpoints": ["http://a:2379"], "provision": {}}, "exactly one"),
        ({"endpoints": ["etcd-a:2379"]}, "http"),
        ({"provision": {"replicas": 2}}, "odd"),
    ],
    ids=["both", "not-a-url", "even-members"],
)
def test_invalid_etcd_settings_are_spec_errors(etcd: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        ClusterSpec.parse("demo", {**REFUSED_CLUSTER, "cluster": {"etcd": etcd}})


def test_full_cluster_example_is_an_external_etcd_cluster() -> None:
    assert ClusterSpec.parse("demo", FULL_CLUSTER).topology is Topology.ETCD
