"""The restate-sdk services every benchmark scenario calls, and the process that serves them.

One module owns both the handlers and their serving so that the two deployments the harness
registers (one over h2c = bidi streaming, one over HTTP/1.1 = request/response) run byte-for-byte
the same code. The only difference between the two processes is a service-name prefix
(``BENCH_SERVICE_PREFIX``), so both deployments can be registered side by side on one server.

Besides the Restate endpoint, the process answers ``GET /bench/seen?prefix=P``: how many distinct
``Greeter.greet`` inputs starting with ``P`` have run to completion here. The harness uses it to
tell when a ``/send`` backlog has drained on a server that has no SQL introspection yet, by a side
effect that is the same on every server.

Run: ``python -m bench.services --port 9080 --prefix ''``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import Any

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    Service,
    VirtualObject,
    Workflow,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate.serde import BytesSerde

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Inputs to ``Greeter.greet`` that start with this are remembered for ``/bench/seen``.
SEND_MARK = "s-"

_seen: set[str] = set()


def build_services(prefix: str) -> list[Service | VirtualObject | Workflow]:
    """Greeter, Counter, Signup (workflow), Sleeper, Caller and Payload, each name prefixed with ``prefix``."""
    greeter = Service(f"{prefix}Greeter")
    payload = Service(f"{prefix}Payload")
    counter = VirtualObject(f"{prefix}Counter")
    signup = Workflow(f"{prefix}Signup")
    sleeper = Service(f"{prefix}Sleeper")
    caller = Service(f"{prefix}Caller")

    @greeter.handler()
    async def greet(ctx: Context, name: str) -> str:
        if name.startswith(SEND_MARK):
            _seen.add(name)
        return f"Hello {name}!"

    @counter.handler()
    async def add(ctx: ObjectContext, delta: int) -> int:
        value = (await ctx.get("value", type_hint=int) or 0) + delta
        ctx.set("value", value)
        return value

    @counter.handler(kind="shared")
    async def get(ctx: ObjectSharedContext) -> int:
        return await ctx.get("value", type_hint=int) or 0

    def make_user(name: str) -> str:
        return f"user-{name}"

    @signup.main()
    async def run(ctx: WorkflowContext, name: str) -> str:
        user = await ctx.run_typed("create-user", make_user, restate.RunOptions(), name)
        ctx.set("stage", "waiting")
        code = await ctx.promise("confirmed", type_hint=str).value()
        ctx.set("stage", "done")
        return f"welcome {user} ({code})"

    @signup.handler()
    async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
        await ctx.promise("confirmed", type_hint=str).resolve(code)

    @signup.handler()
    async def status(ctx: WorkflowSharedContext) -> str:
        return await ctx.get("stage", type_hint=str) or "none"

    @sleeper.handler()
    async def nap(ctx: Context, millis: int) -> int:
        await ctx.sleep(timedelta(milliseconds=millis))
        return millis

    @caller.handler(name="callGreet")
    async def call_greet(ctx: Context, name: str) -> str:
        return await ctx.service_call(greet, name)

    @payload.handler(
        input_serde=BytesSerde(),
        output_serde=BytesSerde(),
        accept="application/octet-stream",
        content_type="application/octet-stream",
    )
    async def echo(ctx: Context, body: bytes) -> bytes:
        """The request body back: large payloads through ingress, log, journal, replay and response."""
        return body

    return [greeter, counter, signup, sleeper, caller, payload]


def with_stats(app: Asgi) -> Asgi:
    """Wrap the Restate ASGI app with the ``/bench/seen`` side-effect counter."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/seen":
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
            prefix = query.get("prefix", [SEND_MARK])[0]
            body = json.dumps({"count": sum(1 for name in _seen if name.startswith(prefix))}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


async def serve(port: int, prefix: str) -> None:
    """Serve the services with hypercorn on 127.0.0.1:``port`` (HTTP/1.1 and h2c prior knowledge)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    # hypercorn closes a connection after 1,000 requests by default; the server's long-lived h2c
    # connection would then see GOAWAY mid-benchmark and attempts would fail.
    config.keep_alive_max_requests = 1 << 40
    # A /send backlog can open many concurrent invocation streams on one connection.
    config.h2_max_concurrent_streams = 10_000
    config.keep_alive_timeout = 300
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    app = with_stats(restate.app(services=build_services(prefix)))
    await hypercorn_serve(app, config)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default=os.environ.get("BENCH_SERVICE_PREFIX", ""))
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.port, args.prefix))
    except ImportError:
        asyncio.run(serve(args.port, args.prefix))


if __name__ == "__main__":
    main()
