"""The pure parts of fakekube and the kubelet: selectors, patches, schemas, routes, pod specs, DNS."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fakekube import patching, routing, schema, selectors, tables
from .fakekube.errors import ApiError
from .kubelet import dns, images, podspec


def _obj(labels: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"name": "x", "labels": labels}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b,c!=d", {"a": "b", "c": "e"}, True),
        ("a in (x, y)", {"a": "y"}, True),
        ("a notin (x,y),b", {"a": "z", "b": ""}, True),
        ("!a", {"a": "1"}, False),
        ("a", {}, False),
        ("", {}, True),
    ],
    ids=["eq", "eq-and-neq", "in", "notin-and-exists", "not-exists", "exists-missing", "empty"],
)
def test_label_selector_matches_like_kubernetes(text: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.label_selector(text)(_obj(labels)) is expected


def test_field_selector_on_any_dotted_path() -> None:
    match = selectors.field_selector("metadata.name=x,status.phase!=Pending")
    assert match(_obj({}))
    assert not selectors.field_selector("metadata.name=y")(_obj({}))


def test_label_selector_object_renders_as_text() -> None:
    sel = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "c", "operator": "In", "values": ["x"]}],
    }
    assert selectors.selector_from_label_selector(sel) == "a=1,b=2,c in (x)"


def test_merge_patch_deletes_with_null_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert patching.merge_patch(target, {"a": {"b": None}, "l": [3]}) == {"a": {"c": 2}, "l": [3]}


def test_strategic_merge_merges_containers_by_name_and_deletes() -> None:
    target = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}
    patch = {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}],
    }
    assert patching.strategic_merge(target, patch) == {"containers": [{"name": "a", "image": "2"}]}


def test_json_patch_failed_test_is_422() -> None:
    with pytest.raises(ApiError) as failure:
        patching.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert failure.value.code == 422


def test_server_side_apply_drops_what_the_manager_no_longer_applies() -> None:
    current = {"data": {"a": "1", "b": "2", "other": "kept"}}
    result = patching.server_side_apply(current, {"data": {"a": "1"}}, {"data": {"a": "1", "b": "2"}})
    assert result == {"data": {"a": "1", "other": "kept"}}


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "default": 3},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"x": {"type": "integer", "default": 1}},
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "required": ["mode"],
        }
    },
}


def test_schema_defaults_recursively_and_prunes_unknown_fields() -> None:
    obj = {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "n"},
        "spec": {"mode": "a", "junk": 1, "free": {"y": 2}},
    }
    out = schema.default_and_prune(obj, SCHEMA, root=True)
    assert out["spec"] == {"mode": "a", "size": 3, "nested": {"x": 1}, "free": {"y": 2}}
    assert out["metadata"] == {"name": "n"}


def test_schema_validation_reports_enum_and_required() -> None:
    problems = schema.validate({"spec": {"mode": "c"}}, SCHEMA) + schema.validate({"spec": {}}, SCHEMA)
    assert problems == ["spec.mode: Unsupported value: 'c'", "spec.mode: Required value"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces", routing.Target(group="", version="v1", plural="namespaces")),
        ("/api/v1/namespaces/ns1", routing.Target(group="", version="v1", plural="namespaces", name="ns1")),
        (
            "/api/v1/namespaces/ns1/status",
            routing.Target(group="", version="v1", plural="namespaces", name="ns1", sub="status"),
        ),
        (
            "/api/v1/namespaces/ns1/pods",
            routing.Target(group="", version="v1", plural="pods", namespace="ns1"),
        ),
        (
            "/apis/apps/v1/namespaces/n/statefulsets/s/scale",
            routing.Target(
                group="apps", version="v1", plural="statefulsets", namespace="n", name="s", sub="scale"
            ),
        ),
        ("/apis/apps/v1", None),
    ],
    ids=["namespaces", "namespace", "namespace-status", "pods", "sts-scale", "discovery"],
)
def test_routes_parse_like_the_api_server(path: str, expected: routing.Target | None) -> None:
    assert routing.parse(path) == expected


def test_env_expansion_downward_api_and_sources() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}}, "spec": {"nodeName": "n"}}
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(IP):80/$(POD)/$(UNKNOWN)/$$"},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
    }
    sources = podspec.Sources(configmaps={"cm": {"A": "1"}}, secrets={"s": {"k": "v"}})
    env = podspec.container_env(pod, container, "127.0.9.9", sources)
    assert env == {
        "CM_A": "1",
        "POD": "p",
        "IP": "127.0.9.9",
        "APP": "x",
        "URL": "http://127.0.9.9:80/p/$(UNKNOWN)/$",
        "PW": "v",
    }
    with pytest.raises(podspec.MissingSource):
        podspec.container_env(pod, container, "127.0.9.9", podspec.Sources(configmaps={"cm": {}}, secrets={}))


def test_mount_paths_are_rewritten_once_longest_first() -> None:
    mounts = {"/tmp": Path("/w/tmp"), "/config": Path("/w/config"), "/config/sub": Path("/w/sub")}
    text = "--config=/config/c.toml /config/sub/x /tmp/a /configuration /x/config"
    assert (
        podspec.rewrite_paths(text, mounts)
        == "--config=/w/config/c.toml /w/sub/x /w/tmp/a /configuration /x/config"
    )


ETCD_CONTAINER = {
    "name": "etcd",
    "image": "quay.io/coreos/etcd:v3.5.17",
    "command": ["/usr/local/bin/etcd"],
    "args": [
        "--listen-client-urls=http://0.0.0.0:2379",
        "--listen-peer-urls=http://[::]:2380",
        "--advertise-client-urls=http://$(POD_NAME).etcd.ns.svc.cluster.local:2379",
    ],
    "env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ETCD_LISTEN_METRICS_URLS", "value": "http://0.0.0.0:2381,http://127.0.0.1:2382"},
    ],
}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("quay.io/coreos/etcd:v3.5.17", "quay.io/coreos/etcd"),
        ("registry.k8s.io/etcd:3.5.17-0", "registry.k8s.io/etcd"),
        ("localhost:5000/etcd@sha256:abc", "localhost:5000/etcd"),
        ("busybox", "busybox"),
    ],
    ids=["tag", "k8s-registry", "registry-port-digest", "bare"],
)
def test_image_repository_drops_tag_and_digest(image: str, expected: str) -> None:
    assert images.repository(image) == expected


def test_etcd_image_runs_the_local_etcd_bound_to_the_pod_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/bin/{name}")
    local = images.localise(ETCD_CONTAINER, "127.0.9.9")
    assert local["command"] == ["/usr/bin/etcd"]
    assert local["args"] == [
        "--listen-client-urls=http://127.0.9.9:2379",
        "--listen-peer-urls=http://127.0.9.9:2380",
        "--advertise-client-urls=http://$(POD_NAME).etcd.ns.svc.cluster.local:2379",
    ]
    env = {e["name"]: e.get("value") for e in local["env"]}
    assert env["ETCD_LISTEN_METRICS_URLS"] == "http://127.0.9.9:2381,http://127.0.0.1:2382"
    assert env["GODEBUG"] == "netdns=cgo", "Go resolves through libc, so the podnet shim answers"
    assert ETCD_CONTAINER["command"] == ["/usr/local/bin/etcd"], "the pod spec itself is not modified"
    args_only = {**ETCD_CONTAINER, "command": None, "args": ["/usr/local/bin/etcd", "--name=x"]}
    assert images.localise(args_only, "127.0.9.9")["command"] == ["/usr/bin/etcd"]
    assert images.localise(args_only, "127.0.9.9")["args"] == ["--name=x"]


def test_unknown_images_are_untouched_and_a_missing_binary_keeps_the_pod_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = {"name": "c", "image": "busybox:1", "command": ["sleep", "1"]}
    assert images.localise(plain, "127.0.9.9") is plain
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    with pytest.raises(podspec.MissingSource, match="etcd-server"):
        images.localise(ETCD_CONTAINER, "127.0.9.9")


def test_hosts_map_resolves_with_search_domains(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        dns.render({"web.ns.svc.cluster.local": ["127.0.0.5"], "p-0.web.ns.svc.cluster.local": ["127.0.0.6"]})
    )
    assert dns.lookup(hosts, "web", "ns") == ["127.0.0.5"]
    assert dns.lookup(hosts, "p-0.web", "ns") == ["127.0.0.6"]
    assert dns.lookup(hosts, "web.ns", "other") == ["127.0.0.5"]
    assert dns.lookup(hosts, "web", "other") == []


def test_printer_column_jsonpath_subset() -> None:
    obj = {
        "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    assert tables.jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert tables.jsonpath(obj, ".spec.containers[*].name") == ["a", "b"]
    assert tables.jsonpath(obj, ".spec.containers[1].name") == ["b"]
    assert tables.jsonpath(obj, ".spec.missing") == []


def test_schema_validation_checks_bounds_and_maps() -> None:
    bounded = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "s": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
            "l": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    assert schema.validate({"n": 2, "s": "ab", "l": ["x"], "m": {"k": "v"}}, bounded) == []
    problems = schema.validate({"n": 0, "s": "ABCD", "l": ["x", "y"], "m": {"k": 1}}, bounded)
    assert [p.split(":")[0] for p in problems] == ["n", "s", "s", "l", "m.k"]


def test_immutability_rule_is_the_one_cel_rule_honoured() -> None:
    immutable = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "mode": {
                        "type": "string",
                        "x-kubernetes-validations": [
                            {"rule": "self == oldSelf", "message": "mode is immutable"}
                        ],
                    },
                    "other": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]},
                },
            }
        },
    }
    assert schema.immutability({"spec": {"mode": "a"}}, {"spec": {"mode": "b"}}, immutable) == [
        "spec.mode: Invalid value: mode is immutable"
    ]
    assert schema.immutability({"spec": {}}, {"spec": {"mode": "b", "other": "long"}}, immutable) == []
