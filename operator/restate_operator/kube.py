"""A thin, typed Kubernetes client for the few verbs the operator uses.

It rides on the ``kubernetes`` package's configured ``ApiClient`` (in-cluster or kubeconfig auth) but
speaks plain JSON dicts, so rendered manifests go out as they are. Writes are server-side apply with the
operator's field manager: applying the same manifest twice changes nothing. Errors are translated once,
here: :class:`NotFound`, :class:`Conflict`, else :class:`KubeError` with the HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kubernetes import client, config

from restate_operator.models import JsonObject

# (apiVersion, kind) -> (plural, namespaced): only the kinds the operator reads or writes.
RESOURCES: Mapping[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"): ("secretproviderclasses", True),
    ("restate.dev/v1", "RestateCluster"): ("restateclusters", False),
    ("restate.dev/v1beta1", "RestateDeployment"): ("restatedeployments", True),
    ("restate.dev/v1alpha1", "Subscription"): ("subscriptions", True),
}


class KubeError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: already exists, or a resourceVersion precondition failed."""


def object_path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of a collection (no ``name``) or of one object."""
    plural, namespaced = RESOURCES[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


def load_config() -> None:
    """Configure the ``kubernetes`` package: in-cluster service account first, else ``$KUBECONFIG``."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class Kube:
    """JSON in, JSON out, over the ``kubernetes`` package's connection and credentials."""

    field_manager: str
    api: client.ApiClient | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        api = self.api or client.ApiClient()
        url = api.configuration.host + path + (("?" + urlencode(query)) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        api.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
        try:
            response = api.call_api(method, url, header_params=headers, body=body)
            data = response.read()  # type: ignore[no-untyped-call]
        except client.ApiException as exc:  # the REST layer raises for non-2xx answers
            raise _translate(exc.status or 0, str(exc.body or exc.reason)) from exc
        if response.status >= 400:
            raise _translate(response.status, data.decode(errors="replace"))
        return json.loads(data) if data else {}

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        """The object, or ``None`` if it does not exist."""
        try:
            return self.request("GET", object_path(api_version, kind, namespace, name))
        except NotFound:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[JsonObject]:
        """Objects of a kind in a namespace, filtered by equality label selectors."""
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        result = self.request("GET", object_path(api_version, kind, namespace), query=query)
        items: list[JsonObject] = result.get("items") or []
        return items

    def apply(self, obj: Mapping[str, Any]) -> JsonObject:
        """Server-side apply ``obj`` (create or update the fields the operator owns)."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self.request(
            "PATCH",
            path,
            query={"fieldManager": self.field_manager, "force": "true"},
            body=dict(obj),
            content_type="application/apply-patch+yaml",
        )

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: JsonObject
    ) -> JsonObject:
        """JSON merge-patch (``None`` values delete keys)."""
        return self.request(
            "PATCH",
            object_path(api_version, kind, namespace, name),
            query={"fieldManager": self.field_manager},
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
    ) -> None:
        """Delete if present; a missing object is not an error."""
        try:
            self.request(
                "DELETE",
                object_path(api_version, kind, namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
            )
        except NotFound:
            return


def _translate(status: int, message: str) -> KubeError:
    if status == 404:
        return NotFound(status, message)
    if status == 409:
        return Conflict(status, message)
    return KubeError(status, message)
