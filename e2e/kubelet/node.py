"""The kubelet's own endpoint and Node object: container logs for ``kubectl logs``.

As on a real node, the API server reaches the kubelet at the Node's ``InternalIP`` and
``status.daemonEndpoints.kubeletEndpoint.Port`` and asks ``GET /containerLogs/<ns>/<pod>/<container>``
(``tailLines`` honoured); fakekube proxies ``pods/<name>/log`` there. The endpoint listens on
``<pod prefix>1``, the first address of the kubelet's own /24.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .api import Api, ApiFailure, Res
from .controllers import NODE_NAME

logger = logging.getLogger(__name__)

NODES = Res("", "v1", "nodes")


def _log_text(path: Path, tail_lines: int | None) -> str:
    text = path.read_text(errors="replace")
    if tail_lines is None:
        return text
    return "".join(text.splitlines(keepends=True)[-tail_lines:]) if tail_lines > 0 else ""


class NodeServer:
    def __init__(self, api: Api, address: str, log_path: Callable[[str, str, str], Path | None]) -> None:
        self.api = api
        self.address = address
        self.log_path = log_path
        self._runner: web.AppRunner | None = None

    async def _logs(self, request: web.Request) -> web.Response:
        info = request.match_info
        path = self.log_path(info["namespace"], info["pod"], info["container"])
        if path is None or not path.exists():
            raise web.HTTPNotFound(text=f"no log for {info['namespace']}/{info['pod']}/{info['container']}")
        tail = request.query.get("tailLines")
        return web.Response(text=_log_text(path, int(tail) if tail else None))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE_NAME}}
        status = {
            "addresses": [
                {"type": "InternalIP", "address": self.address},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }
        try:
            await self.api.create(NODES, None, node)
            await self.api.merge_patch(NODES, None, NODE_NAME, {"status": status}, sub="status")
        except ApiFailure as e:
            logger.warning("node registration failed: %s", e)
        logger.info("kubelet endpoint on %s:%s", self.address, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
