"""The command line of `restate-py-server`, mirroring `restate-server --help` of upstream 1.7.

Upstream's flags are `RestateArguments` (`server/src/main.rs`: `--config-file`, `--dump-config`,
`--production`, `--no-logo`, `--metadata-migration-mode`) plus `CommonOptionCliOverride`
(`crates/types/src/config/cli_option_overrides.rs`), whose flags are configuration keys of the same name
that override every other source. This module only declares them and turns the given ones into a
configuration layer; `loader.py` decides what they mean.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from restate_server.config import layers


def _version() -> str:
    import importlib.metadata  # ~20 ms to import: only for --version

    try:
        return importlib.metadata.version("restate-py")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Version(argparse.Action):
    """``-V``/``--version``: prints the installed version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show program's version number and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"restate-py-server {_version()}")  # to stdout, as argparse's own version action
        parser.exit()


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class _Override:
    """A flag that sets the configuration key `key`."""

    flags: tuple[str, ...]
    key: str
    help: str
    convert: Callable[[str], object] = str
    choices: Sequence[str] | None = None
    metavar: str | None = None


_OVERRIDES = (
    _Override(
        ("--listen-mode",),
        "listen-mode",
        "listen on unix sockets, TCP or both",
        choices=("unix", "tcp", "all"),
    ),
    _Override(("--use-random-ports",), "use-random-ports", "use random ports", _bool, metavar="BOOL"),
    _Override(("--advertised-host",), "advertised-host", "hostname to advertise for this node"),
    _Override(("--bind-ip",), "bind-ip", "local interface IP address to listen on"),
    _Override(("--bind-port",), "bind-port", "port of the node-to-node (fabric) server", int),
    _Override(("--node-name",), "node-name", "unique node name (default: the hostname)"),
    _Override(("--location", "--node-location"), "location", "node location, region[.zone]"),
    _Override(("--force-node-id",), "force-node-id", "insist on this node id", int),
    _Override(("--cluster-name",), "cluster-name", "cluster name, identical on all nodes"),
    _Override(
        ("--auto-provision", "--allow-bootstrap"),
        "auto-provision",
        "may provision a new cluster",
        _bool,
        metavar="BOOL",
    ),
    _Override(("--base-dir",), "base-dir", "working directory (default: ./restate-data)"),
    _Override(("--bind-address",), "bind-address", "node-to-node bind address, e.g. [::]:5122"),
    _Override(("--advertised-address",), "advertised-address", "address other nodes use to reach this one"),
    _Override(
        ("--default-num-partitions", "--bootstrap-num-partitions"),
        "default-num-partitions",
        "partitions at initial provisioning (default: 24)",
        int,
    ),
    _Override(("--shutdown-timeout",), "shutdown-timeout", "time to drain on shutdown, e.g. 1m"),
    _Override(("--tracing-endpoint",), "tracing-endpoint", "OTLP endpoint for traces"),
    _Override(
        ("--tracing-runtime-endpoint",), "tracing-runtime-endpoint", "OTLP endpoint for runtime traces"
    ),
    _Override(
        ("--tracing-services-endpoint",), "tracing-services-endpoint", "OTLP endpoint for service traces"
    ),
    _Override(("--tracing-json-path",), "tracing-json-path", "write Jaeger JSON traces to this directory"),
    _Override(("--tracing-filter",), "tracing-filter", "tracing exporter filter"),
    _Override(("--log-filter",), "log-filter", "log filter in RUST_LOG syntax (RUST_LOG overrides it)"),
    _Override(("--log-format",), "log-format", "log format", choices=("pretty", "compact", "json")),
    _Override(
        ("--log-disable-ansi-codes",),
        "log-disable-ansi-codes",
        "no ANSI colours in logs",
        _bool,
        metavar="BOOL",
    ),
)


def _dest(override: _Override) -> str:
    return "override_" + override.key.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; flags and meanings follow `restate-server` 1.7."""
    parser = argparse.ArgumentParser(
        prog="restate-py-server",
        description="A durable-execution server compatible with Restate.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "-c",
        "--config-file",
        type=Path,
        metavar="FILE",
        help="configuration file (TOML) [env: RESTATE_CONFIG]",
    )
    parser.add_argument(
        "--dump-config",
        action="store_true",
        help="print the loaded configuration (defaults, file, env and flags) as TOML and exit",
    )
    parser.add_argument("--production", action="store_true", help="use the production profile")
    parser.add_argument("--no-logo", action="store_true", help="do not print the logo on startup")
    parser.add_argument(
        "--metadata-migration-mode", action="store_true", help="accepted for compatibility; has no effect"
    )
    parser.add_argument(
        "--metadata-store-address", metavar="ADDRESS", help="accepted for compatibility; has no effect"
    )
    parser.add_argument(
        "--roles",
        "--role",
        action="append",
        metavar="ROLES",
        help="roles to run, comma-separated or repeated",
    )
    for override in _OVERRIDES:
        parser.add_argument(
            *override.flags,
            dest=_dest(override),
            type=override.convert,
            choices=override.choices,
            metavar=override.metavar
            or (None if override.choices else override.key.upper().replace("-", "_")),
            help=override.help,
        )
    parser.add_argument("-V", "--version", action=_Version)
    return parser


def cli_layers(args: argparse.Namespace) -> list[layers.Layer]:
    """One layer per given flag, so an invalid value names its flag."""
    found = []
    for override in _OVERRIDES:
        value = getattr(args, _dest(override))
        if value is not None:
            layer = layers.Layer(f"command-line flag {override.flags[0]}")
            layer.values[override.key] = value
            if isinstance(value, str):
                layer.raw[override.key] = value
            found.append(layer)
    if args.roles:
        layer = layers.Layer("command-line flag --roles")
        layer.values["roles"] = [
            role.strip() for item in args.roles for role in item.split(",") if role.strip()
        ]
        found.append(layer)
    return found
