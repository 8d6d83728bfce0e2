"""RestateCluster rendering: every object valid for Kubernetes 1.37, and the behaviour each field drives."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from typing import Any

import pytest
from op_helpers import FULL_CLUSTER, MINIMAL_CLUSTER, validate_k8s
from restate_operator import names
from restate_operator.models import ClusterSpec, SpecError
from restate_operator.render import merge_env, render_cluster, render_config_toml
from restate_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()


def render(spec: dict[str, Any], name: str = "demo", **kw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    objects = render_cluster(ClusterSpec.parse(name, spec), SETTINGS, **kw)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def statefulset(spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return render(spec, **kw)[("StatefulSet", "restate")]


def container(spec: dict[str, Any]) -> dict[str, Any]:
    return statefulset(spec)["spec"]["template"]["spec"]["containers"][0]


def env_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(spec)["env"]}


@pytest.mark.parametrize("spec", [MINIMAL_CLUSTER, FULL_CLUSTER], ids=["minimal", "full"])
def test_cluster_objects_validate_against_kubernetes_schemas(spec: dict[str, Any]) -> None:
    objects = render_cluster(ClusterSpec.parse("demo", spec), SETTINGS)
    assert objects
    for obj in objects:
        validate_k8s(obj)


def test_cluster_renders_expected_objects_in_its_namespace() -> None:
    objects = render(MINIMAL_CLUSTER)
    assert set(objects) >= {
        ("Namespace", "demo"),
        ("ServiceAccount", "restate"),
        ("ConfigMap", "restate-config"),
        ("Service", "restate"),
        ("Service", "restate-cluster"),
        ("StatefulSet", "restate"),
        ("PodDisruptionBudget", "restate"),
        ("NetworkPolicy", "deny-all"),
        ("NetworkPolicy", "allow-restate-egress"),
    }
    for (kind, _), obj in objects.items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "demo"
        assert obj["metadata"]["labels"][names.CLUSTER_LABEL] == "demo"


def test_cluster_services_have_upstream_ports() -> None:
    objects = render(MINIMAL_CLUSTER)
    ports = {p["name"]: p["port"] for p in objects[("Service", "restate")]["spec"]["ports"]}
    assert ports == {"ingress": 8080, "admin": 9070, "metrics": 5122}
    headless = objects[("Service", "restate-cluster")]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True


def test_cluster_statefulset_runs_server_with_per_pod_identity() -> None:
    sts = statefulset(MINIMAL_CLUSTER)
    assert sts["spec"]["serviceName"] == "restate-cluster"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["restate-py-server"]
    env = env_of(MINIMAL_CLUSTER)
    assert env["RESTATE_NODE_NAME"] == "$(POD_NAME)"
    assert (
        env["RESTATE_ADVERTISED_ADDRESS"]
        == "http://$(POD_NAME).restate-cluster.$(POD_NAMESPACE).svc.cluster.local:5122"
    )
    assert env["RESTATE_CONFIG"] == "/config/config.toml"
    assert env["RESTATE_BASE_DIR"] == "/restate-data"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 9070}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"storage": "/restate-data", "tmp": "/tmp", "config": "/config"}
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2147483648"


def test_cluster_user_env_overrides_operator_default_by_name() -> None:
    env = env_of(FULL_CLUSTER)
    assert env["RESTATE_LOG_FORMAT"] == "text"
    assert env["EXTRA"] == "1"
    assert merge_env(
        [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        [{"name": "B", "value": "x"}, {"name": "C", "value": "3"}],
    ) == [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}, {"name": "C", "value": "3"}]


def test_cluster_config_toml_carries_structured_fields_over_user_config() -> None:
    config = tomllib.loads(render_config_toml(ClusterSpec.parse("demo", FULL_CLUSTER)))
    assert config["cluster-name"] == "prod"
    assert config["default-num-partitions"] == 24
    assert config["default-replication"] == 2
    assert config["worker"]["snapshots"] == {
        "destination": "s3://bucket/snapshots",
        "snapshot-interval-num-records": 10000,
    }
    assert config["worker"]["internal-queue-length"] == 100
    assert config["ingress"]["bind-address"] == "0.0.0.0:8080"


def test_cluster_invalid_config_toml_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="TOML"):
        render_config_toml(ClusterSpec.parse("demo", {**MINIMAL_CLUSTER, "config": "[broken"}))


def test_cluster_config_change_rolls_pods_via_template_annotation() -> None:
    base = statefulset(MINIMAL_CLUSTER)["spec"]["template"]["metadata"]["annotations"][names.CONFIG_HASH]
    same = statefulset(dict(MINIMAL_CLUSTER))["spec"]["template"]["metadata"]["annotations"][
        names.CONFIG_HASH
    ]
    changed = statefulset({**MINIMAL_CLUSTER, "cluster": {"partitions": 4}})
    assert base == same
    assert changed["spec"]["template"]["metadata"]["annotations"][names.CONFIG_HASH] != base


def test_cluster_replicas_and_storage_override_render() -> None:
    sts = statefulset(FULL_CLUSTER, storage_bytes=20 * 2**30)
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == str(
        20 * 2**30
    )
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"


def test_cluster_signing_key_from_secret_is_mounted_and_exported() -> None:
    c = container(FULL_CLUSTER)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"] == f"{names.SIGNING_DIR}/private.pem"
    volumes = {v["name"]: v for v in statefulset(FULL_CLUSTER)["spec"]["template"]["spec"]["volumes"]}
    assert volumes[names.SIGNING_VOLUME]["secret"] == {
        "secretName": "signing",
        "items": [{"key": "private.pem", "path": "private.pem"}],
    }


def test_cluster_signing_key_from_csi_provider_renders_provider_class() -> None:
    spec = {
        **MINIMAL_CLUSTER,
        "security": {
            "requestSigningPrivateKey": {
                "secretProvider": {"provider": "aws", "parameters": {"objects": "x"}}
            }
        },
    }
    objects = render(spec)
    assert objects[("SecretProviderClass", "request-signing-key-v1")]["spec"]["provider"] == "aws"
    volumes = {
        v["name"]: v for v in objects[("StatefulSet", "restate")]["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes[names.SIGNING_VOLUME]["csi"]["driver"] == "secrets-store.csi.k8s.io"


def test_cluster_sidecars_are_native_init_containers() -> None:
    init = statefulset(FULL_CLUSTER)["spec"]["template"]["spec"]["initContainers"]
    assert init == [
        {
            "name": "log-shipper",
            "image": "busybox:1.36",
            "args": ["sleep", "infinity"],
            "restartPolicy": "Always",
        }
    ]


def test_cluster_network_policies_can_be_disabled() -> None:
    spec = {**MINIMAL_CLUSTER, "security": {"disableNetworkPolicies": True}}
    assert not [k for k in render(spec) if k[0] == "NetworkPolicy"]


def test_cluster_network_policies_open_what_the_server_needs() -> None:
    objects = render(FULL_CLUSTER)
    admin = objects[("NetworkPolicy", "allow-admin-access")]["spec"]["ingress"][0]
    assert {"podSelector": {"matchLabels": {"app": "admin-tool"}}} in admin["from"]
    assert any("namespaceSelector" in peer for peer in admin["from"])  # the operator
    egress = objects[("NetworkPolicy", "allow-restate-egress")]["spec"]["egress"]
    assert {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"allow.restate.dev/demo": "true"}},
    } in egress[1]["to"]
    assert egress[-1] == FULL_CLUSTER["security"]["networkEgressRules"][0]
    assert ("NetworkPolicy", "allow-ingress-access") in objects
    assert ("NetworkPolicy", "allow-ingress-access") not in render(MINIMAL_CLUSTER)


def test_cluster_operator_admin_access_can_be_withdrawn() -> None:
    spec = {**MINIMAL_CLUSTER, "security": {"allowOperatorAccessToAdmin": False}}
    assert ("NetworkPolicy", "allow-admin-access") not in render(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"storage": {"storageRequestBytes": 1}}, "compute.image"),
        ({"compute": {"image": "x"}}, "storageRequestBytes"),
        ({**MINIMAL_CLUSTER, "compute": {"image": "x", "extraVolumes": [{"name": "config"}]}}, "reserved"),
        ({**MINIMAL_CLUSTER, "compute": {"image": "x", "replicas": -1}}, "replicas"),
        (
            {**MINIMAL_CLUSTER, "security": {"requestSigningPrivateKey": {"version": "v2", "secret": {}}}},
            "v1",
        ),
        ({**MINIMAL_CLUSTER, "security": {"requestSigningPrivateKey": {"version": "v1"}}}, "exactly one"),
    ],
    ids=[
        "no-image",
        "no-storage",
        "reserved-volume",
        "negative-replicas",
        "bad-key-version",
        "no-key-source",
    ],
)
def test_cluster_invalid_spec_is_rejected(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        ClusterSpec.parse("demo", spec)


def test_cluster_settings_templates_reach_the_pods() -> None:
    settings = replace(SETTINGS, advertised_address_template="http://$(POD_IP):5122", server_command="srv")
    sts = next(
        o
        for o in render_cluster(ClusterSpec.parse("demo", MINIMAL_CLUSTER), settings)
        if o["kind"] == "StatefulSet"
    )
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["srv"]
    assert {"name": "RESTATE_ADVERTISED_ADDRESS", "value": "http://$(POD_IP):5122"} in c["env"]


def test_cluster_trusted_ca_certs_build_a_bundle() -> None:
    spec = {
        **MINIMAL_CLUSTER,
        "security": {
            "trustedCaCerts": [
                {"secretName": "corp-ca", "key": "ca.crt"},
                {"secretName": "other", "key": "root.pem"},
            ]
        },
    }
    sts = statefulset(spec)
    validate_k8s(sts)
    pod = sts["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["name"] == "trusted-ca"
    assert {m["mountPath"] for m in init["volumeMounts"]} == {
        names.TRUSTED_CA_DIR,
        "/trusted-ca/0",
        "/trusted-ca/1",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["trusted-ca-1"]["secret"] == {
        "secretName": "other",
        "items": [{"key": "root.pem", "path": "ca.pem"}],
    }
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["SSL_CERT_FILE"] == f"{names.TRUSTED_CA_DIR}/ca-bundle.crt"
    assert "initContainers" not in statefulset(MINIMAL_CLUSTER)["spec"]["template"]["spec"]
