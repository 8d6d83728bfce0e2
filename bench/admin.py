"""The few admin and ingress calls the harness makes outside the measured loops.

Registration, the first call after start, retention settings and SQL introspection all go through
the load generator's own HTTP/1.1 client, so the harness needs no other HTTP library.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench import load, procs


class Admin:
    """The few admin/ingress calls the harness makes outside the measured loops."""

    def __init__(self, ports: procs.Ports) -> None:
        self.ports = ports

    def _client(self, port: int, timeout_s: float = 30.0) -> load.Client:
        return load.Client("127.0.0.1", port, timeout_s)

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        admin: bool = True,
        timeout_s: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> load.Response:
        client = self._client(self.ports.admin if admin else self.ports.ingress, timeout_s)
        try:
            payload = None if body is None else json.dumps(body).encode()
            return await client.request(method, path, payload, headers)
        finally:
            await client.close()

    async def sql(self, query: str, timeout_s: float = 30.0) -> list[dict[str, Any]] | None:
        """Rows of an admin SQL query, or None when the server cannot answer it."""
        try:
            response = await self.call(
                "POST",
                "/query",
                {"query": query},
                headers={"accept": "application/json"},
                timeout_s=timeout_s,
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            return None
        if response.status != 200:
            return None
        try:
            rows = json.loads(response.body)["rows"]
        except (ValueError, KeyError, TypeError):
            return None
        return rows if isinstance(rows, list) else None

    async def greet_ok(self, timeout_s: float = 2.0) -> bool:
        try:
            response = await self.call("POST", "/Greeter/greet", "ready", admin=False, timeout_s=timeout_s)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            return False
        return response.status == 200 and response.body == b'"Hello ready!"'

    async def wait_first_call(self, deadline_s: float) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < deadline_s:
            if await self.greet_ok():
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        return None
