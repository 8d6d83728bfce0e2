"""Serve tests/integration/services.py under hypercorn (h2c and HTTP/1.1 on one port).

Usage: `serve.py PORT [HOST]` (HOST defaults to 127.0.0.1); with `SERVE_CERTFILE` and `SERVE_KEYFILE`
in the environment, over TLS.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import app


def main() -> None:
    config = Config()
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    config.bind = [f"{host}:{sys.argv[1]}"]
    config.keep_alive_max_requests = 1_000_000
    config.keep_alive_timeout = 600
    config.h2_max_concurrent_streams = 1000
    config.accesslog = None
    config.graceful_timeout = 1
    # over TLS (https://) when given a certificate: tests of deployments behind https
    config.certfile = os.environ.get("SERVE_CERTFILE")
    config.keyfile = os.environ.get("SERVE_KEYFILE")
    asyncio.run(serve(app, config, mode="asgi"))


if __name__ == "__main__":
    main()
