"""One grpc.aio server per node for every gRPC service the node offers, reached through the node port.

Upstream serves gRPC and plain HTTP (`/metrics`, `/health`) on the one node port. grpcio's server
cannot adopt a connection accepted by another server, so it listens on an abstract unix socket that
only this process knows (no file to clean up after a crash, no port to choose) and the node port
pipes it every connection that opens with the HTTP/2 preface (`web.proxy`), which gRPC clients send
with prior knowledge; every other connection stays with aiohttp.

Components add their servicers before the node starts them: `add_servicer(register)` takes a
function that adds handlers to the grpc.aio server (e.g. a generated `add_…Servicer_to_server`
bound to a servicer). grpc.aio runs its handlers on the node's event loop (uvloop or asyncio's own).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import grpc

from restate_server.web import proxy

log = logging.getLogger(__name__)

Registration = Callable[[grpc.aio.Server], None]
"""Adds a component's handlers to the node's gRPC server."""

SHUTDOWN_GRACE = 2.0
"""Seconds that running calls (e.g. a long replay stream) get to finish when the node stops."""

# A stream sends as far ahead as its client's HTTP/2 window allows, and that is all the buffering a
# slow reader costs the server; clients of the Replay API turn BDP probing off so the window stays small.
_OPTIONS = (("grpc.so_reuseport", 0),)


class NodeServices:
    """The node's gRPC server: registrations first, then `start`, `sniff` for the node port, `stop`."""

    def __init__(self) -> None:
        self._registrations: list[Registration] = []
        self._server: grpc.aio.Server | None = None
        self._socket_name = f"restate-py-{os.getpid()}-{secrets.token_hex(6)}"

    @property
    def address(self) -> str:
        """Where the gRPC server listens, as a grpc target (the node port is the public address)."""
        return f"unix-abstract:{self._socket_name}"

    def add_servicer(self, register: Registration) -> None:
        """Have ``register`` add its handlers when the server starts."""
        if self._server is not None:
            raise RuntimeError("gRPC servicers must be added before the node services start")
        self._registrations.append(register)

    async def start(self) -> None:
        server = grpc.aio.server(options=_OPTIONS)
        for register in self._registrations:
            register(server)
        if server.add_insecure_port(self.address) == 0:
            raise RuntimeError(f"cannot listen on {self.address}")
        await server.start()
        self._server = server
        log.debug("gRPC node services listening on %s", self.address)

    def sniff(self, first: bytes) -> asyncio.Protocol | None:
        """For the node port: a pipe to the gRPC server for an HTTP/2 connection, None otherwise."""
        if self._server is None or not proxy.is_h2_preface(first):
            return None
        return proxy.Pipe(self._connect)

    async def _connect(
        self, factory: Callable[[], asyncio.Protocol]
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        # connected here: uvloop's create_unix_connection refuses abstract names, sock_connect does not
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, "\0" + self._socket_name)
            return await loop.create_unix_connection(factory, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Refuse new calls, give running ones `grace` seconds, then cancel them."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)


def grpc_target(address: str) -> str:
    """An advertised node-port URL (`http://host:5122/`) as a gRPC target (`host:5122`)."""
    parts = urlsplit(address if "://" in address else f"http://{address}")
    return f"{parts.hostname}:{parts.port or 5122}"
