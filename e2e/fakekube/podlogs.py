"""``pods/<name>/log``: proxied to the pod's node, as the real API server does (``kubectl logs``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from . import errors
from .objects import Objects
from .resources import ResourceType
from .store import meta

NODES = ("", "nodes")


async def pod_log(
    request: web.Request, objects: Objects, rt: ResourceType, namespace: str, name: str
) -> web.Response:
    pod = objects.get(rt, namespace, name)
    spec = pod.get("spec") or {}
    container = request.query.get("container") or (spec.get("containers") or [{}])[0].get("name", "")
    node = objects.store.get(NODES, "", spec.get("nodeName") or "")
    if node is None:
        raise errors.bad_request(f'pod "{name}" is not on a node with a kubelet endpoint')
    status = node.get("status") or {}
    address = next(
        (a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None
    )
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not address or not port:
        raise errors.bad_request(f'node "{meta(node)["name"]}" has no kubelet endpoint')
    params = {k: v for k, v in request.query.items() if k == "tailLines"}
    url = f"http://{address}:{port}/containerLogs/{namespace}/{name}/{container}"
    try:
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
            text = await resp.text()
    except aiohttp.ClientError as e:
        raise errors.ApiError(502, "InternalError", f"cannot reach the kubelet: {e}") from e
    if resp.status == 404:
        raise errors.bad_request(f'container "{container}" in pod "{name}" has no log: {text}')
    return web.Response(text=text, content_type="text/plain")
