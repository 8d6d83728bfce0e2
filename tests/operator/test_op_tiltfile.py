"""The Tiltfile, evaluated by a Starlark interpreter with stubs that record what Tilt would do."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from op_helpers import ROOT

starlark = pytest.importorskip("starlark", reason="starlark-pyo3 is not installed")

PRELUDE = """
config = struct(define_bool=_define_bool, define_string_list=_define_string_list, parse=_parse)
"""


@dataclass
class Tilt:
    """What the Tiltfile asked for, with just enough behaviour to follow its branches."""

    args: dict[str, Any]
    images: list[str] = field(default_factory=list)
    yaml_docs: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    def path(self, rel: str) -> Path:
        self.files.append(rel)
        return ROOT / rel

    # ---- stubs, with Tilt's signatures for the arguments the Tiltfile uses ----
    def allow_k8s_contexts(self, contexts: list[str]) -> None:
        assert contexts

    def _define_bool(self, name: str, usage: str = "") -> None:
        self.flags.add(name)

    def _define_string_list(self, name: str, usage: str = "") -> None:
        self.flags.add(name)

    def _parse(self) -> dict[str, Any]:
        assert set(self.args) <= self.flags, f"unknown flags {set(self.args) - self.flags}"
        return dict(self.args)

    def docker_build(
        self,
        ref: str,
        context: str,
        dockerfile: str = "Dockerfile",
        only: list[str] | None = None,
        live_update: list[Any] | None = None,
    ) -> None:
        assert ref not in self.images, f"image {ref} declared twice"
        assert self.path(dockerfile).is_file()
        assert self.path(context).is_dir()
        for entry in only or []:
            assert self.path(entry).exists(), entry
        self.images.append(ref)

    def k8s_yaml(self, source: Any) -> None:
        text = source if "\n" in str(source) else self.path(source).read_text()
        self.yaml_docs += [d for d in yaml.safe_load_all(text) if d]

    def kustomize(self, path: str) -> str:
        assert self.path(path).is_dir()
        return subprocess.run(
            ["kubectl", "kustomize", str(ROOT / path)], check=True, capture_output=True, text=True
        ).stdout

    def helm(self, path: str, name: str = "", namespace: str = "", set: list[str] | None = None) -> str:
        helm_python = pytest.importorskip("helm_python")
        values: dict[str, Any] = {}
        for assignment in set or []:
            key, _, value = assignment.partition("=")
            node = values
            *parents, leaf = key.split(".")
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = int(value) if value.isdigit() else value
        with helm_python.Chart.load(str(self.path(path))) as chart:
            out = chart.render(values, name=name, namespace=namespace, is_install=True)
        return "\n---\n".join(t for p, t in sorted(out.items()) if t.strip() and not p.endswith("NOTES.txt"))

    def k8s_kind(self, kind: str, image_json_path: str = "") -> None:
        self.kinds[kind] = image_json_path

    def k8s_resource(
        self,
        workload: str,
        labels: list[str] | None = None,
        resource_deps: list[str] | None = None,
        port_forwards: list[Any] | None = None,
    ) -> None:
        self.resources[workload] = {"deps": resource_deps or []}

    def local_resource(
        self,
        name: str,
        cmd: str = "",
        deps: list[str] | None = None,
        labels: list[str] | None = None,
        trigger_mode: int = 0,
        auto_init: bool = True,
    ) -> None:
        for dep in deps or []:
            assert self.path(dep).exists(), dep
        self.resources[name] = {"deps": [], "local": True}

    def watch_file(self, path: str) -> None:
        assert self.path(path).exists()


def evaluate(args: dict[str, Any]) -> Tilt:
    tilt = Tilt(args=args)
    module = starlark.Module()
    for name in (
        "allow_k8s_contexts",
        "_define_bool",
        "_define_string_list",
        "_parse",
        "docker_build",
        "k8s_yaml",
        "kustomize",
        "helm",
        "k8s_kind",
        "k8s_resource",
        "local_resource",
        "watch_file",
    ):
        module.add_callable(name, getattr(tilt, name))
    module["TRIGGER_MODE_MANUAL"] = 1
    module["TRIGGER_MODE_AUTO"] = 0
    dialect = starlark.Dialect.extended()
    dialect.enable_top_level_stmt = True
    globals_ = starlark.Globals.extended_by([starlark.LibraryExtension.StructType])
    starlark.eval(module, starlark.parse("prelude", PRELUDE, dialect), globals_)
    source = (ROOT / "Tiltfile").read_text()
    starlark.eval(module, starlark.parse("Tiltfile", source, dialect), globals_)
    return tilt


def workloads(docs: list[dict[str, Any]], kinds: dict[str, str]) -> set[str]:
    builtin = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod"}
    return {d["metadata"]["name"] for d in docs if d["kind"] in builtin or d["kind"] in kinds}


def images_in(docs: list[dict[str, Any]]) -> set[str]:
    found = set()
    for doc in docs:
        if doc["kind"] == "RestateCluster":
            found.add(doc["spec"]["compute"]["image"].split(":")[0])
        for container in (
            ((doc.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", [])
        ):
            found.add(container["image"].split(":")[0])
    return found


@pytest.mark.parametrize(
    "args",
    [{}, {"helm": True}, {"examples": ["restatecluster", "restatedeployment", "subscription"]}],
    ids=["kustomize", "helm", "all-examples"],
)
def test_tiltfile_evaluates_and_references_real_things(args: dict[str, Any]) -> None:
    tilt = evaluate(args)
    assert tilt.images == ["restate-py-server", "restate-py-operator"]
    names = workloads(tilt.yaml_docs, tilt.kinds)
    for resource, info in tilt.resources.items():
        assert info.get("local") or resource in names, f"k8s_resource({resource!r}) matches no workload"
        for dep in info["deps"]:
            assert dep in tilt.resources or dep in names
    assert set(tilt.images) <= images_in(tilt.yaml_docs), "every built image is used by some object"
    assert tilt.kinds["RestateCluster"] == "{.spec.compute.image}"


def test_tiltfile_rejects_unknown_flags() -> None:
    with pytest.raises(Exception, match="unknown flags"):
        evaluate({"nope": True})
