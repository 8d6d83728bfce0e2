"""A minimal asynchronous Kubernetes client (aiohttp, JSON) and list-then-watch informers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Res:
    group: str
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        parts = [base]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if sub is not None:
            parts.append(sub)
        return "/".join(parts)


PODS = Res("", "v1", "pods")
SERVICES = Res("", "v1", "services")
ENDPOINTS = Res("", "v1", "endpoints")
CONFIGMAPS = Res("", "v1", "configmaps")
SECRETS = Res("", "v1", "secrets")
PVCS = Res("", "v1", "persistentvolumeclaims")
STATEFULSETS = Res("apps", "v1", "statefulsets")
REPLICASETS = Res("apps", "v1", "replicasets")


class ApiFailure(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        async with self.session.request(
            method,
            self.base_url + path,
            data=data,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            payload = await resp.json(content_type=None)
            if resp.status >= 400:
                raise ApiFailure(resp.status, payload)
            return payload

    async def create(self, res: Res, namespace: str | None, body: JsonObj) -> JsonObj | None:
        """Create; None when it already exists (409)."""
        try:
            result: JsonObj = await self.call("POST", res.path(namespace), body=body)
            return result
        except ApiFailure as e:
            if e.status == 409:
                return None
            raise

    async def merge_patch(
        self, res: Res, namespace: str | None, name: str, body: JsonObj, sub: str | None = None
    ) -> JsonObj | None:
        """Merge-patch; None when the object is gone (404)."""
        try:
            result: JsonObj = await self.call(
                "PATCH",
                res.path(namespace, name, sub),
                body=body,
                content_type="application/merge-patch+json",
            )
            return result
        except ApiFailure as e:
            if e.status == 404:
                return None
            raise

    async def delete(self, res: Res, namespace: str, name: str, *, grace: int | None = None) -> None:
        body: JsonObj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            await self.call("DELETE", res.path(namespace, name), body=body)
        except ApiFailure as e:
            if e.status != 404:
                raise

    async def list(self, res: Res) -> tuple[list[JsonObj], str]:
        doc = await self.call("GET", res.path())
        return doc.get("items") or [], doc["metadata"]["resourceVersion"]

    async def watch(self, res: Res, rv: str) -> AsyncIterator[tuple[str, JsonObj]]:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "600"}
        async with self.session.get(self.base_url + res.path(), params=params) as resp:
            if resp.status >= 400:
                raise ApiFailure(resp.status, await resp.text())
            async for line in resp.content:
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]


def key_of(obj: JsonObj) -> tuple[str, str]:
    md = obj["metadata"]
    return (md.get("namespace", ""), md["name"])


class Informer:
    """A cache of one resource kept current by list-then-watch; calls ``on_change`` after each update."""

    def __init__(self, api: Api, res: Res, on_change: Callable[[], None]) -> None:
        self.api = api
        self.res = res
        self.on_change = on_change
        self.objects: dict[tuple[str, str], JsonObj] = {}
        self.synced = asyncio.Event()

    def values(self) -> list[JsonObj]:
        return list(self.objects.values())

    def get(self, namespace: str, name: str) -> JsonObj | None:
        return self.objects.get((namespace, name))

    async def run(self) -> None:
        while True:
            try:
                items, rv = await self.api.list(self.res)
                self.objects = {key_of(o): o for o in items}
                self.synced.set()
                self.on_change()
                async for kind, obj in self.api.watch(self.res, rv):
                    if kind == "ERROR":
                        break
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        self.objects.pop(key_of(obj), None)
                    else:
                        self.objects[key_of(obj)] = obj
                    self.on_change()
            except (aiohttp.ClientError, ApiFailure, TimeoutError) as e:
                logger.warning("watch of %s failed (%s); re-listing", self.res.plural, e)
            await asyncio.sleep(0.2)
