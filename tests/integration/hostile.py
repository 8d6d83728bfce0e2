"""A deployment that registers like a real SDK and then misbehaves on every invocation.

Discovery, health and lifespan are served by the real `restate-sdk` ASGI app (so registration goes
through real discovery, over h2c or HTTP/1.1); `POST .../invoke/Hostile/<handler>` is answered by a
script chosen by the handler's name. It runs under hypercorn on its own event loop in a thread of
the test process, next to a second listener that only counts the connections it gets (the target of
the redirect, which must never be followed).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import ObjectContext

SERVICE = "Hostile"
THREE_GIB = 3 * 2**30
STREAMED_AFTER_HEADER = 300 * 2**20
"""How much of the announced 3 GiB payload is actually sent: enough that buffering it would push
the server's memory far past the test's bound, little enough to stay a bounded test."""

_SET_STATE, _OUTPUT, _END = 0x0403, 0x0401, 0x0003
_UNKNOWN_COMMAND = 0x0500  # no protocol version defines it
_CHUNK = b"\0" * 2**20

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _frame(type_: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    return struct.pack(">HHI", type_, 0, len(payload) if length is None else length) + payload


def _sdk_app() -> Any:
    hostile = restate.VirtualObject(SERVICE)

    async def never_runs(ctx: ObjectContext) -> None:
        raise AssertionError("the scripted answers replace the SDK on invoke")

    for name in ("garbage_state", "unknown_type", "oversized", "redirect"):
        hostile.handler(name=name)(never_runs)
    return restate.app([hostile])


class HostileDeployment:
    """The ASGI app plus its hypercorn server thread; `uri` once `start` returned."""

    def __init__(self) -> None:
        self._sdk = _sdk_app()
        # listening before hypercorn runs: connections wait in the backlog, no readiness polling
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.redirect_port = 0
        self.redirect_hits = 0
        self.streamed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="hostile-deployment", daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle
    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the hostile deployment did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        redirect_target = await asyncio.start_server(self._count_redirect, "127.0.0.1", 0)
        self.redirect_port = redirect_target.sockets[0].getsockname()[1]
        config = Config()
        config.bind = [f"fd://{self._listener.detach()}"]
        config.accesslog = None
        config.loglevel = "WARNING"
        config.graceful_timeout = 1
        server = asyncio.get_running_loop().create_task(
            serve(self, config, mode="asgi", shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        )
        self._ready.set()
        await server
        redirect_target.close()

    async def _count_redirect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.redirect_hits += 1
        writer.close()

    # ---- ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if "/invoke/" not in path:
            await self._sdk(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"")
        handler = path.rsplit("/", 1)[-1]
        if handler == "redirect":
            location = f"http://127.0.0.1:{self.redirect_port}{path}".encode()
            await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]}
        )
        if handler == "oversized":
            await self._stream_oversized(receive, send)
            return
        body = {
            "garbage_state": _frame(_SET_STATE, b"\xff\xff\xff\xff") + _frame(_END),
            "unknown_type": _frame(_UNKNOWN_COMMAND) + _frame(_END),
        }[handler]
        await send({"type": "http.response.body", "body": body})

    async def _stream_oversized(self, receive: Receive, send: Send) -> None:
        """Announce a 3 GiB Output and keep sending until the server hangs up (or the bound)."""
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send(
                {"type": "http.response.body", "body": _frame(_OUTPUT, length=THREE_GIB), "more_body": True}
            )
            while self.streamed < STREAMED_AFTER_HEADER and not gone.is_set():
                await send({"type": "http.response.body", "body": _CHUNK, "more_body": True})
                self.streamed += len(_CHUNK)
            await send({"type": "http.response.body", "body": b""})
        except (ConnectionError, OSError):
            pass
        finally:
            watcher.cancel()


async def _lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
