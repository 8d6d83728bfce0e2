"""The TLS context of calls to ``https://`` deployments, made on first use rather than at every start.

aiohttp builds two default client contexts when it is imported, and each loads the system's CA store
(about 20 ms apiece: some 40 ms of every start and restart, before a single call can be served). This
server never uses them: its one aiohttp client (the HTTP/1.1 invoker) passes ``deployment_context()``
for every connection. ``import_aiohttp`` therefore imports aiohttp with CA loading switched off; the
store is loaded once, by the first call to an ``https://`` deployment.
"""

from __future__ import annotations

import functools
import importlib
import ssl


@functools.cache
def deployment_context() -> ssl.SSLContext:
    """Verifies deployments' certificates against the system's CA store (loaded on the first call)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def import_aiohttp() -> None:
    """Import aiohttp without its default client contexts loading the CA store (they stay unused).

    Call it before anything else imports aiohttp; once aiohttp is imported it does nothing.
    """
    load_default_paths = ssl.SSLContext.set_default_verify_paths
    ssl.SSLContext.set_default_verify_paths = _skip  # type: ignore[method-assign,assignment]
    try:
        importlib.import_module("aiohttp")
    finally:
        ssl.SSLContext.set_default_verify_paths = load_default_paths  # type: ignore[method-assign]


def _skip(context: ssl.SSLContext) -> None:
    """``set_default_verify_paths`` while aiohttp is imported: its contexts get no CAs."""
