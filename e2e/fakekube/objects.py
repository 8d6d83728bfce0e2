"""API semantics over the store: create, replace, patch and delete, with finalizers and propagation.

This is the one place that decides what a write means (metadata the server owns, generation bumps,
the status/spec split, resourceVersion preconditions, deletion that waits for finalizers); the HTTP
layer only parses requests and renders answers. Per-kind behaviour (defaults, CRD registration) lives in
``strategies``; garbage collection in ``gc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import string
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from . import errors, patching, strategies
from .resources import Registry, ResourceType
from .store import JsonObj, Store, TypeKey, meta

_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_NOT_SPEC = ("metadata", "status", "apiVersion", "kind")
NAMESPACES: TypeKey = ("", "namespaces")
PODS: TypeKey = ("", "pods")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _comparable(obj: JsonObj) -> JsonObj:
    out = copy.deepcopy(obj)
    meta(out).pop("resourceVersion", None)
    return out


def _spec_part(obj: JsonObj) -> JsonObj:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class Objects:
    """The API's write and read operations; one per server."""

    def __init__(self, registry: Registry, store: Store, *, service_prefix: str) -> None:
        self.registry = registry
        self.store = store
        self.service_prefix = service_prefix
        self.gc_wakeup = asyncio.Event()
        self.dry_run = False
        """Set while serving a ``dryRun=All`` request (requests are handled one at a time)."""
        self._last_applied: dict[tuple[TypeKey, str, str, str], JsonObj] = {}
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.registry.by_key(NAMESPACES), "", {"metadata": {"name": ns}})  # type: ignore[arg-type]

    # reads -------------------------------------------------------------------------------------
    def present(self, rt: ResourceType, obj: JsonObj) -> JsonObj:
        """A client's copy of a stored object, spelled in the requested version."""
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonObj:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.qualified, name)
        return obj

    def namespace_usable(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if meta(ns).get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    # writes ------------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: JsonObj) -> JsonObj:
        obj = copy.deepcopy(body)
        md = meta(obj)
        if rt.namespaced:
            if md.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match the request")
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
            namespace = ""
        if not md.get("name") and md.get("generateName"):
            md["name"] = self._generate_name(rt, namespace, md["generateName"])
        if not md.get("name"):
            raise errors.invalid(
                rt.kind, "", "metadata.name: Required value: name or generateName is required"
            )
        self.namespace_usable(rt, namespace)
        if self.store.get(rt.key, namespace, md["name"]) is not None:
            raise errors.already_exists(rt.qualified, md["name"])
        for f in (*_SERVER_OWNED, "resourceVersion", "managedFields", "selfLink"):
            md.pop(f, None)
        md.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.status:
            obj.pop("status", None)
        obj = strategies.on_create(self, rt, obj)
        return self._write(rt, obj, None)

    def _generate_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            name = prefix + "".join(random.choices(alphabet, k=5))
            if self.store.get(rt.key, namespace, name) is None:
                return name

    def update(
        self, rt: ResourceType, namespace: str, name: str, body: JsonObj, *, sub: str | None
    ) -> JsonObj:
        """Replace an object (PUT, or the result of a patch); ``sub`` is None or ``"status"``."""
        old = self.get(rt, namespace, name)
        want_rv = meta(body).get("resourceVersion")
        if want_rv and want_rv != meta(old)["resourceVersion"]:
            raise errors.conflict(
                rt.qualified,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        new = copy.deepcopy(body)
        if sub == "status":  # only .status changes through the subresource
            status = new.get("status")
            new = copy.deepcopy(old)
            new.pop("status", None)
            if status is not None:
                new["status"] = status
        else:
            if rt.status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            nmd, omd = meta(new), meta(old)
            if nmd.get("name", name) != name:
                raise errors.bad_request("the name of the object does not match the name in the URL")
            nmd["name"] = name
            if rt.namespaced:
                nmd["namespace"] = namespace
            for f in _SERVER_OWNED:
                if f in omd:
                    nmd[f] = omd[f]
                else:
                    nmd.pop(f, None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        new = strategies.on_update(self, rt, old, new, sub=sub)
        if _spec_part(new) != _spec_part(old):
            meta(new)["generation"] = int(meta(old).get("generation", 1)) + 1
        if _comparable(new) == _comparable(old):
            return old
        md = meta(new)
        if (
            md.get("deletionTimestamp")
            and not md.get("finalizers")
            and not md.get("deletionGracePeriodSeconds")
        ):
            return self._remove(rt, old)
        return self._write(rt, new, old)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        content_type: str,
        patch: Any,
        sub: str | None,
        field_manager: str,
    ) -> tuple[JsonObj, bool]:
        """Apply a patch; returns the object and whether it was created (server-side apply only)."""
        ns = namespace if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        applying = content_type == "application/apply-patch+yaml"
        if old is None:
            if not applying or sub is not None:
                raise errors.not_found(rt.qualified, name)
            if not isinstance(patch, dict):
                raise errors.bad_request("an applied configuration must be an object")
            created = self.create(rt, namespace, patch | {"metadata": meta(patch) | {"name": name}})
            if not self.dry_run:
                self._last_applied[(rt.key, ns, name, field_manager)] = copy.deepcopy(patch)
            return created, True
        if content_type == "application/json-patch+json":
            new = patching.json_patch(old, patch)
        elif content_type == "application/merge-patch+json":
            new = patching.merge_patch(old, patch)
        elif content_type == "application/strategic-merge-patch+json":
            if rt.crd is not None:
                raise errors.ApiError(
                    415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
                )
            new = patching.strategic_merge(old, patch)
        elif applying:
            if not isinstance(patch, dict):
                raise errors.bad_request("an applied configuration must be an object")
            key = (rt.key, ns, name, field_manager)
            new = patching.server_side_apply(old, patch, self._last_applied.get(key))
            if not self.dry_run:
                self._last_applied[key] = copy.deepcopy(patch)
        else:
            raise errors.ApiError(
                415, "UnsupportedMediaType", f"the patch type {content_type!r} is not supported"
            )
        if not isinstance(new, dict):
            raise errors.bad_request("the patched object is not an object")
        if applying and not meta(patch).get("resourceVersion"):
            meta(new).pop("resourceVersion", None)
        return self.update(rt, namespace, name, new, sub=sub), False

    def delete(self, rt: ResourceType, namespace: str, name: str, options: JsonObj | None = None) -> JsonObj:
        old = self.get(rt, namespace, name)
        options = options or {}
        pre = options.get("preconditions") or {}
        omd = meta(old)
        if pre.get("resourceVersion") and pre["resourceVersion"] != omd["resourceVersion"]:
            raise errors.conflict(
                rt.qualified, name, "the ResourceVersion in the precondition does not match"
            )
        if pre.get("uid") and pre["uid"] != omd["uid"]:
            raise errors.conflict(rt.qualified, name, "the UID in the precondition does not match")
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background"
        )
        if policy == "Orphan":
            self.orphan_dependents(omd["uid"])
        obj = copy.deepcopy(old)
        md = meta(obj)
        finalizers = list(md.get("finalizers") or [])
        if policy == "Foreground" and self.dependents(omd["uid"]) and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = 0
        if rt.key == PODS and (obj.get("spec") or {}).get("nodeName"):
            # A pod on a node terminates gracefully: its kubelet stops it, then deletes it with grace 0.
            default_grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = int(options.get("gracePeriodSeconds", default_grace))
        if rt.key == NAMESPACES:
            obj.setdefault("status", {})["phase"] = "Terminating"
            self.gc_wakeup.set()
        elif not finalizers and grace == 0:
            return self._remove(rt, old)
        if finalizers:
            md["finalizers"] = finalizers
        if md.get("deletionTimestamp") and _comparable(obj) == _comparable(old):
            return old
        md.setdefault("deletionTimestamp", now())
        md.setdefault("deletionGracePeriodSeconds", grace)
        stored = self._write(rt, obj, old)
        self.gc_wakeup.set()
        return stored

    def _write(self, rt: ResourceType, obj: JsonObj, old: JsonObj | None) -> JsonObj:
        if self.dry_run:
            return obj
        stored = self.store.put(rt.key, obj, old=old)
        strategies.after_write(self, rt, old, stored)
        return stored

    @contextlib.contextmanager
    def dry(self, enabled: bool) -> Iterator[None]:
        """``dryRun=All``: every check and default, nothing stored."""
        self.dry_run = enabled
        try:
            yield
        finally:
            self.dry_run = False

    def _remove(self, rt: ResourceType, old: JsonObj) -> JsonObj:
        if self.dry_run:
            return old
        gone = self.store.remove(rt.key, old)
        md = meta(old)
        for key in [k for k in self._last_applied if k[:3] == (rt.key, md.get("namespace", ""), md["name"])]:
            del self._last_applied[key]
        strategies.after_remove(self, rt, gone)
        self.gc_wakeup.set()
        return gone

    # owner references --------------------------------------------------------------------------
    def dependents(self, uid: str) -> list[tuple[TypeKey, JsonObj]]:
        return [
            (key, obj)
            for key, obj in self.store.everything()
            if any(ref.get("uid") == uid for ref in meta(obj).get("ownerReferences") or [])
        ]

    def orphan_dependents(self, uid: str) -> None:
        for key, obj in self.dependents(uid):
            rt = self.registry.by_key(key)
            if rt is None:
                continue
            new = copy.deepcopy(obj)
            refs = [r for r in meta(new).get("ownerReferences") or [] if r.get("uid") != uid]
            meta(new)["ownerReferences"] = refs
            if not refs:
                del meta(new)["ownerReferences"]
            md = meta(obj)
            self.update(rt, md.get("namespace", ""), md["name"], new, sub=None)

    def delete_stored(self, key: TypeKey, obj: JsonObj, *, policy: str = "Background") -> None:
        """Delete a stored object on the server's own behalf (GC, namespace termination, CRD removal)."""
        rt = self.registry.by_key(key)
        md = meta(obj)
        if rt is None:
            self.store.remove(key, obj)
            return
        if self.store.get(key, md.get("namespace", ""), md["name"]) is not None:
            self.delete(rt, md.get("namespace", ""), md["name"], {"propagationPolicy": policy})
