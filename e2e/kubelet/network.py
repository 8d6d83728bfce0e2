"""The cluster network on loopback: pod IPs, Endpoints, ClusterIP proxies and the DNS hosts map.

* Pod IPs come from ``127.0.R.2-254``, R chosen per kubelet among the /24s nothing listens on.
* Each Service gets an Endpoints object listing its selected pods (ready ones in ``addresses``), deleted
  with the Service.
* Each Service with a ClusterIP (fakekube hands them out from ``127.1.S.0/24``) gets a TCP listener on
  ``clusterIP:port`` per port that forwards every connection to one ready endpoint (round robin) on
  the ``targetPort`` (numbers, or names looked up in the pod's container ports): kube-proxy's job.
* DNS names: ``<svc>.<ns>.svc.cluster.local`` → the ClusterIP, or for headless Services the endpoint
  IPs (not-ready ones too with ``publishNotReadyAddresses``); ``<hostname>.<subdomain>.<ns>.svc…`` →
  the pod IP (StatefulSet pods: ``<sts>-<n>.<serviceName>.<ns>.svc.cluster.local``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections import deque
from pathlib import Path
from typing import Any

from .. import loopback
from . import dns
from .api import ENDPOINTS, Api, ApiFailure

logger = logging.getLogger(__name__)

JsonObj = dict[str, Any]


class IpPool:
    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or loopback.free_prefix(0)
        self._free = deque(f"{self.prefix}{n}" for n in range(2, 255))

    def allocate(self) -> str:
        if not self._free:
            raise RuntimeError(f"no pod IPs left in {self.prefix}0/24")
        return self._free.popleft()

    def release(self, ip: str) -> None:
        self._free.append(ip)  # reused last, so a stale client does not reach a new pod at once


def is_ready(pod: JsonObj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selects(service: JsonObj, pod: JsonObj) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return (
        bool(selector)
        and pod["metadata"].get("namespace") == service["metadata"].get("namespace")
        and all(labels.get(k) == v for k, v in selector.items())
    )


def target_port(pod: JsonObj, port: JsonObj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if str(target).isdigit():
        return int(str(target))
    for container in pod["spec"].get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


class Network:
    def __init__(self, api: Api, hosts_file: Path) -> None:
        self.api = api
        self.hosts_file = hosts_file
        self._hosts_text = ""
        self._endpoints: dict[tuple[str, str], JsonObj] = {}
        self._listeners: dict[tuple[str, int], asyncio.Server] = {}
        self._backends: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self._rr = itertools.count()
        self._connections: set[asyncio.Task[None]] = set()
        """Forwarding tasks, held here: asyncio keeps only weak references to tasks."""
        self.write_hosts({})

    def write_hosts(self, entries: dict[str, list[str]]) -> None:
        text = dns.render(entries)
        if text != self._hosts_text:
            tmp = self.hosts_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.rename(self.hosts_file)
            self._hosts_text = text

    async def sync(self, pods: list[JsonObj], services: list[JsonObj]) -> None:
        live = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("podIP")
        ]
        entries: dict[str, list[str]] = {}
        backends: dict[tuple[str, int], list[tuple[str, int]]] = {}
        wanted_endpoints: set[tuple[str, str]] = set()
        for svc in services:
            md, spec = svc["metadata"], svc.get("spec") or {}
            fqdn = f"{md['name']}.{md['namespace']}.svc.{dns.CLUSTER_DOMAIN}"
            selected = [p for p in live if selects(svc, p)]
            ready = [p for p in selected if is_ready(p)]
            cluster_ip = spec.get("clusterIP")
            if cluster_ip and cluster_ip != "None":
                entries[fqdn] = [cluster_ip]
                for port in spec.get("ports") or []:
                    targets = [
                        (p["status"]["podIP"], t) for p in ready if (t := target_port(p, port)) is not None
                    ]
                    backends[(cluster_ip, int(port["port"]))] = targets
            else:
                shown = selected if spec.get("publishNotReadyAddresses") else ready
                if shown:
                    entries[fqdn] = [p["status"]["podIP"] for p in shown]
                for pod in selected:
                    pspec = pod["spec"]
                    if pspec.get("subdomain") == md["name"] and pspec.get("hostname"):
                        entries[f"{pspec['hostname']}.{fqdn}"] = [pod["status"]["podIP"]]
            if spec.get("selector"):
                wanted_endpoints.add((md["namespace"], md["name"]))
                await self._write_endpoints(svc, selected, ready)
        self.write_hosts(entries)
        self._backends = backends
        await self._sync_listeners(set(backends))
        for namespace, name in set(self._endpoints) - wanted_endpoints:  # the Service is gone: so are they
            self._endpoints.pop((namespace, name), None)
            try:
                await self.api.delete(ENDPOINTS, namespace, name)
            except ApiFailure as e:
                logger.debug("endpoints %s/%s not deleted: %s", namespace, name, e)

    async def _write_endpoints(self, svc: JsonObj, selected: list[JsonObj], ready: list[JsonObj]) -> None:
        md = svc["metadata"]
        ports = [
            {
                "name": p.get("name", ""),
                "port": target_port(selected[0], p) if selected else p.get("port"),
                "protocol": "TCP",
            }
            for p in (svc.get("spec") or {}).get("ports") or []
        ]

        def address(pod: JsonObj) -> JsonObj:
            return {
                "ip": pod["status"]["podIP"],
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod["metadata"]["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }

        not_ready = [p for p in selected if p not in ready]
        subset: JsonObj = {"ports": ports}
        if ready:
            subset["addresses"] = [address(p) for p in ready]
        if not_ready:
            subset["notReadyAddresses"] = [address(p) for p in not_ready]
        body: JsonObj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": md["name"], "namespace": md["namespace"], "labels": md.get("labels") or {}},
            "subsets": [subset] if selected else [],
        }
        key = (md["namespace"], md["name"])
        if self._endpoints.get(key) == body:
            return
        try:
            if await self.api.create(ENDPOINTS, md["namespace"], body) is None:
                await self.api.merge_patch(
                    ENDPOINTS, md["namespace"], md["name"], {"subsets": body["subsets"]}
                )
            self._endpoints[key] = body
        except ApiFailure as e:
            logger.debug("endpoints %s/%s not written: %s", md["namespace"], md["name"], e)

    async def _sync_listeners(self, wanted: set[tuple[str, int]]) -> None:
        for key in set(self._listeners) - wanted:
            server = self._listeners.pop(key)
            server.close()
        for key in wanted - set(self._listeners):
            ip, port = key
            try:
                self._listeners[key] = await asyncio.start_server(
                    functools.partial(self._forward, key), ip, port
                )
            except OSError as e:
                logger.warning("cannot listen on %s:%s for a service: %s", ip, port, e)

    async def _forward(
        self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            targets = self._backends.get(key) or []
            if not targets:
                return
            ip, port = targets[next(self._rr) % len(targets)]
            try:
                up_reader, up_writer = await asyncio.open_connection(ip, port)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            if task is not None:
                self._connections.discard(task)

    async def close(self) -> None:
        await self._sync_listeners(set())
        for task in list(self._connections):
            task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
