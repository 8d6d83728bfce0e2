"""Run the shared test services under hypercorn: ``python tests/services/serve.py --port N``.

Cleartext hypercorn speaks HTTP/1.1 and h2c with prior knowledge on the same port, so one process
serves both bidi (h2c) and request/response (HTTP/1.1) deployments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from restate.server import install_shutdown_hook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import make_app


def _with_lifespan(app: Any) -> Any:
    """Answer ASGI lifespan events, which the SDK app does not handle (hypercorn would warn)."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", default="")
    parser.add_argument("--identity-key", action="append", dest="identity_keys")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.keep_alive_max_requests = 1_000_000  # the server reuses connections for many invocations
    config.keep_alive_timeout = 600
    config.h2_max_concurrent_streams = 1000
    config.accesslog = None
    config.graceful_timeout = 1
    app = make_app(variant=args.variant, identity_keys=args.identity_keys)
    asyncio.run(_run(_with_lifespan(app), config))


async def _run(app: Any, config: Config) -> None:
    # Tests stop endpoints with SIGTERM and want them gone at once (open h2 streams would otherwise
    # hold hypercorn's graceful shutdown), so exit without ceremony. The SDK takes over SIGTERM on
    # its first request through this same hook registry, so register there rather than directly.
    install_shutdown_hook(asyncio.get_running_loop(), lambda: os._exit(0), signal.SIGTERM)
    await serve(app, config, shutdown_trigger=asyncio.Event().wait)


if __name__ == "__main__":
    main()
