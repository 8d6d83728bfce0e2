"""`restate-py-server` and `python -m restate_server`: load the configuration, set up logging, run a node.

This is the process boundary, so it owns what upstream's `server/src/main.rs` owns: exit codes (a
configuration error prints the reason to stderr and exits 1, as upstream does), `--dump-config`, the
startup warnings about keys this server accepts but ignores and about `RESTATE_*` variables that are
no configuration key, a listener that cannot bind (one line, exit 1: a busy port is an operator's
mistake, not a crash), and the event loop. Signals and the
node's lifetime belong to `restate_server.node.run`, which returns once the node has shut down.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
import types
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from restate_server import config as config_mod, memory
from restate_server.observability import logging as log_setup
from restate_server.web import tls

EXIT_FAILURE = 1
_logger = logging.getLogger("restate_server.main")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; returns the process exit code."""
    # Peers are reached by their advertised names through the system resolver (/etc/hosts, nsswitch),
    # as every other client of the node resolves them; gRPC's default c-ares resolver bypasses it.
    os.environ.setdefault("GRPC_DNS_RESOLVER", "native")
    # Arrow (SQL answers) allocates from glibc's heap rather than its own mimalloc pool, which keeps
    # the freed tables of a query (hundreds of MB over a large store) instead of returning them; the
    # trim after each query hands glibc's back.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    memory.bound_free_heap_tops()
    try:
        loaded, args = config_mod.load_config(argv, os.environ)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    if args.dump_config:
        sys.stdout.write(config_mod.dump_config(loaded.config))
        sys.stdout.flush()
        return 0
    config = loaded.config
    log_setup.configure_logging(config)
    if loaded.unused_keys:
        _logger.warning(
            "These configuration keys are accepted for compatibility with restate-server but have no effect"
            " in this server yet: %s",
            ", ".join(loaded.unused_keys),
        )
    if loaded.ignored_env_vars:
        _logger.warning(
            "Ignoring environment variables that are not configuration keys of restate-server: %s",
            ", ".join(loaded.ignored_env_vars),
        )
    _logger.info(
        "Starting restate-py-server: node_name=%s config_source=%s base_dir=%s",
        config.node_name,
        loaded.config_file if loaded.config_file is not None else "[default]",
        config.node_dir.resolve(),
    )
    _dump_on_sigusr1(config)
    # Imported late: the node pulls in every component, which --dump-config and errors do not need.
    tls.import_aiohttp()  # first, so its unused default TLS contexts load no CA store
    node = importlib.import_module("restate_server.node")
    run: Callable[[config_mod.Config], Coroutine[Any, Any, None]] = node.run
    listen_error: type[Exception] = node.ListenError
    try:
        _run(run(config))
    except KeyboardInterrupt:  # a second Ctrl-C while node.run was draining
        return 130
    except listen_error as exc:
        _logger.error("%s", exc)
        return EXIT_FAILURE
    except Exception:
        _logger.exception("restate-py-server failed")
        return EXIT_FAILURE
    return 0


def _dump_on_sigusr1(config: config_mod.Config) -> None:
    """`kill -USR1 <pid>` prints the live configuration to stderr, as upstream does."""
    if not hasattr(signal, "SIGUSR1"):
        return

    def dump(signum: int, frame: types.FrameType | None) -> None:
        sys.stderr.write(config_mod.dump_config(config))
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, dump)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (as ARCHITECTURE.md chooses), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


if __name__ == "__main__":
    sys.exit(main())
