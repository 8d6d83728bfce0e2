"""An example Restate service for this server: a greeter and a counter, written with the real Python SDK.

Run it with `python examples/greeter/service.py`: it listens on 127.0.0.1:9080 (`HOST` and `PORT`
change that; `HOST=0.0.0.0` to be reachable from other machines). It serves
HTTP/2 without TLS (h2c) and HTTP/1.1 on the same port, stops cleanly on Ctrl-C or SIGTERM, and needs
nothing but `restate-sdk` and `hypercorn` (both installed by `make install`).
"""

from __future__ import annotations

import asyncio
import os
import signal

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate import Context, ObjectContext, ObjectSharedContext
from restate.server import install_shutdown_hook

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    """A durable step, then the answer: a retry after a crash does not send the greeting twice."""
    greeting = await ctx.run_typed("compose", lambda: f"Hello, {name}!")
    return greeting


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    """Adds to this key's count; calls for one key run one at a time."""
    total = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


app = restate.app([greeter, counter])


async def main() -> None:
    config = Config()
    config.bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{int(os.environ.get('PORT', '9080'))}"]
    config.accesslog = None
    config.graceful_timeout = 5
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The SDK takes SIGTERM for itself on the first request (to drain running invocations); its hook
    # registry lets this stop hook run too. Ctrl-C (SIGINT) is ours alone.
    install_shutdown_hook(loop, stop.set, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"Greeter and Counter listening on {config.bind[0]} (h2c and HTTP/1.1); Ctrl-C stops", flush=True)
    await serve(app, config, mode="asgi", shutdown_trigger=stop.wait)


if __name__ == "__main__":
    asyncio.run(main())
