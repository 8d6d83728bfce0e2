"""RestateDeployment rendering and version hashing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from op_helpers import deployment_spec, validate_k8s
from restate_operator import names
from restate_operator.deployment import version_hash
from restate_operator.hashing import fnv1a64, safe_encode, template_hash
from restate_operator.models import DeletionPolicy, DeploymentSpec, SpecError
from restate_operator.render import render_autoscaler, render_version, restate_port


def parse(spec: dict[str, Any]) -> DeploymentSpec:
    return DeploymentSpec.parse("greeter", "apps", spec)


@pytest.mark.parametrize("latest", [True, False], ids=["latest", "older"])
def test_version_objects_validate_against_kubernetes_schemas(latest: bool) -> None:
    rs, svc = render_version(parse(deployment_spec()), "bcdfgh", latest=latest)
    validate_k8s(rs)
    validate_k8s(svc)


def test_version_replicaset_selects_only_its_pods() -> None:
    rs, svc = render_version(parse(deployment_spec()), "bcdfgh", latest=True)
    assert rs["metadata"]["name"] == svc["metadata"]["name"] == "greeter-bcdfgh"
    selector = rs["spec"]["selector"]["matchLabels"]
    assert selector == {"app": "greeter", names.POD_TEMPLATE_HASH: "bcdfgh"}
    labels = rs["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in selector.items())
    assert labels["allow.restate.dev/demo"] == "true"
    assert labels[names.LATEST] == "true"
    assert rs["metadata"]["labels"][names.OWNED_BY] == "greeter"
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"][0]["port"] == 9080
    assert rs["spec"]["replicas"] == 2


def test_version_service_port_follows_the_restate_container_port() -> None:
    assert (
        restate_port(
            {
                "spec": {
                    "containers": [{"ports": [{"containerPort": 1}, {"name": "restate", "containerPort": 7}]}]
                }
            }
        )
        == 7
    )
    assert restate_port({"spec": {"containers": [{"ports": [{"containerPort": 5}]}]}}) == 5
    assert restate_port({"spec": {"containers": [{}]}}) == 9080


def test_version_hash_is_stable_and_tracks_inputs() -> None:
    spec = parse(deployment_spec())
    h = version_hash(spec, 0)
    assert h == version_hash(parse(deployment_spec()), 0)
    assert len(h) == 6
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert version_hash(parse(deployment_spec(image="ghcr.io/example/greeter:2")), 0) != h
    assert version_hash(parse(deployment_spec(servicePath="v1")), 0) != h
    assert version_hash(parse(deployment_spec(useHttp11=True)), 0) != h
    assert version_hash(spec, 1) != h
    # replicas and drain settings are not part of a version
    assert version_hash(parse({**deployment_spec(drainDelaySeconds=5), "replicas": 7}), 0) == h


def test_hash_building_blocks() -> None:
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector
    assert safe_encode(bytes([0, 26, 27])) == "b9b"
    assert template_hash({}, register_target="a", service_path="", use_http11=False, collision_count=0) != (
        template_hash({}, register_target="b", service_path="", use_http11=False, collision_count=0)
    )


def test_deployment_spec_defaults() -> None:
    spec = parse(deployment_spec())
    assert spec.revision_history_limit == 10
    assert spec.drain_delay_seconds == 300
    assert spec.deletion_policy is DeletionPolicy.DRAIN
    assert spec.register.cluster == "demo"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["restate"].update(register={}), "exactly one"),
        (lambda s: s["restate"].update(register={"cluster": "a", "url": "http://x"}), "exactly one"),
        (lambda s: s["restate"].update(register={"cloud": "env"}), "not supported"),
        (lambda s: s.update(deploymentMode="knative"), "replicaset"),
        (lambda s: s.update(selector={"matchLabels": {"app": "other"}}), "does not match"),
        (lambda s: s["template"]["spec"].update(containers=[]), "containers"),
        (lambda s: s["restate"].update(deletionPolicy="Later"), "deletionPolicy"),
        (lambda s: s.update(replicas="two"), "replicas"),
    ],
    ids=[
        "no-target",
        "two-targets",
        "cloud",
        "knative",
        "selector-mismatch",
        "no-containers",
        "bad-policy",
        "bad-replicas",
    ],
)
def test_deployment_invalid_spec_is_rejected(mutate: Any, message: str) -> None:
    spec = copy.deepcopy(deployment_spec())
    mutate(spec)
    with pytest.raises(SpecError, match=message):
        parse(spec)


def test_version_autoscaler_targets_the_replicaset_and_never_zero() -> None:
    spec = parse(
        {
            **deployment_spec(),
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        }
    )
    hpa = render_autoscaler(spec, "greeter-bcdfgh")
    validate_k8s(hpa)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "greeter-bcdfgh",
    }
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 5
    with pytest.raises(SpecError, match="maxReplicas"):
        parse({**deployment_spec(), "autoscaling": {"minReplicas": 1}})
