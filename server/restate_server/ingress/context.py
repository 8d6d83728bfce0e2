"""What every ingress handler works with: configuration, the schema, the worker, and body reading."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from restate_server.config import Config
from restate_server.ingress.errors import PayloadTooLarge
from restate_server.schema.registry import SchemaRegistry
from restate_server.worker.api import WorkerHandle


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressContext:
    config: Config
    registry: SchemaRegistry
    worker: WorkerHandle

    async def body(self, request: web.Request) -> bytes:
        """The request body, refused with 413 past `ingress.request-size-limit`.

        A declared length past the limit is refused before anything is read, as upstream's body
        limit layer does; a chunked body is refused when it crosses the limit (aiohttp stops there).
        """
        declared = request.content_length
        if declared is not None and declared > self.config.ingress.request_size_limit:
            raise PayloadTooLarge()
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise PayloadTooLarge() from exc
