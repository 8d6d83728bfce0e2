"""Process logging configured from `log-filter`, `log-format` and `log-disable-ansi-codes`.

Upstream filters with tracing's `EnvFilter` syntax (`warn,restate=info`, or `RUST_LOG`): comma-separated
directives, each a bare level (the default) or `target=level`, where a target matches every target that
starts with it. Here the targets are Python logger names: upstream crate targets are translated to the
subpackage that mirrors the crate (`restate_ingress_http` -> `restate_server.ingress`, `restate` ->
`restate_server`, `::` -> `.`), and any other target is used as a logger name (`aiohttp=debug`).
As upstream does (`crates/tracing-instrumentation/src/lib.rs`), WARN and ERROR go to stderr and
everything else to stdout; formats are pretty (coloured on a terminal), compact, and JSON lines
shaped like tracing-subscriber's (`timestamp`, `level`, `fields.message`, `target`).

Messages carry text from outside (an SDK's failure message, a deployment's response), so the text
formatter escapes control characters in them: a newline or carriage return cannot forge a log line,
and an escape sequence cannot colour or rewrite the terminal. JSON lines are escaped by the JSON encoder (ASCII
output: every control character and every non-ASCII character becomes a `\\u` escape).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import ClassVar, Protocol, TextIO


class LogSettings(Protocol):
    """The three logging keys (`restate_server.config.Config` has them); a protocol keeps this
    module below the configuration package."""

    @property
    def log_filter(self) -> str: ...
    @property
    def log_format(self) -> str: ...
    @property
    def log_disable_ansi_codes(self) -> bool: ...


TRACE = 5
logging.addLevelName(TRACE, "TRACE")
_OFF = logging.CRITICAL + 10

_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": _OFF,
    # EnvFilter also takes numbers: 1 = error ... 5 = trace, 0 = off.
    "0": _OFF,
    "1": logging.ERROR,
    "2": logging.WARNING,
    "3": logging.INFO,
    "4": logging.DEBUG,
    "5": TRACE,
}

# Upstream crate (target prefix) -> the subpackage that mirrors it.
_CRATES = {
    "restate_ingress_http": "restate_server.ingress",
    "restate_ingress_kafka": "restate_server.ingress",
    "restate_admin": "restate_server.admin",
    "restate_storage_query_datafusion": "restate_server.admin",
    "restate_invoker_impl": "restate_server.invoker",
    "restate_invoker": "restate_server.invoker",
    "restate_service_client": "restate_server.invoker",
    "restate_worker": "restate_server.worker",
    "restate_partition_store": "restate_server.storage",
    "restate_storage_api": "restate_server.storage",
    "restate_bifrost": "restate_server.log",
    "restate_metadata_server": "restate_server.metadata",
    "restate_metadata_store": "restate_server.metadata",
    "restate_service_protocol": "restate_server.protocol",
    "restate_types": "restate_server.schema",
    "restate_node": "restate_server.node",
    "restate_server": "restate_server",
    "restate_tracing_instrumentation": "restate_server.observability",
    "restate": "restate_server",
    "hyper": "aiohttp",
}

_ROOT_LOGGERS = ("restate_server", "aiohttp", "h2", "hpack", "asyncio")


# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals) and the Unicode line and
# paragraph separators, written as Python escapes; a tab is left as it is.
_CONTROLS = [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPES = {code: ascii(chr(code))[1:-1] for code in _CONTROLS}


def escape_controls(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``): one plain line."""
    return text if text.isprintable() else text.translate(_ESCAPES)


def parse_filter(spec: str) -> tuple[int, dict[str, int]]:
    """The default level and per-logger levels of an EnvFilter-style spec; bad directives are skipped."""
    default = logging.ERROR  # EnvFilter's default when no bare level is given
    targets: dict[str, int] = {}
    for raw in spec.split(","):
        directive = raw.strip()
        if not directive:
            continue
        target, sep, level_text = directive.rpartition("=")
        if not sep:
            target, level_text = "", directive
        level = _LEVELS.get(level_text.strip().lower())
        if level is None:
            if not sep:  # a bare target enables everything for it, as EnvFilter does
                targets[logger_name(directive)] = TRACE
                continue
            print(f"ignoring invalid log filter directive {directive!r}", file=sys.stderr)
            continue
        target = target.split("[", 1)[0].strip()  # span/field filters have no Python counterpart
        if target:
            targets[logger_name(target)] = level
        else:
            default = level
    return default, targets


def logger_name(target: str) -> str:
    """The Python logger a Rust (or Python) log target stands for."""
    crate, _, rest = target.partition("::")
    mapped = _CRATES.get(crate, crate)
    return ".".join([mapped, *[part for part in rest.split("::") if part]]) if rest else mapped


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {"message": record.getMessage()}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return json.dumps(
            {
                "timestamp": _timestamp(record),
                "level": _level_name(record.levelno),
                "fields": fields,
                "target": record.name,
            },
            separators=(",", ":"),
        )


class _TextFormatter(logging.Formatter):
    _COLOURS: ClassVar[dict[int, str]] = {
        TRACE: "35",
        logging.DEBUG: "34",
        logging.INFO: "32",
        logging.WARNING: "33",
        logging.ERROR: "31",
    }

    def __init__(self, *, compact: bool, colour: bool) -> None:
        super().__init__()
        self._compact = compact
        self._colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = _level_name(record.levelno)
        if self._colour:
            code = self._COLOURS.get(record.levelno, "31")
            level = f"\x1b[{code}m{level:>5}\x1b[0m"
        else:
            level = f"{level:>5}"
        text = f"{_timestamp(record)} {level} {record.name}: {escape_controls(record.getMessage())}"
        if not self._compact and record.exc_info:
            # a traceback is several lines by design; each is indented and escaped, so an exception
            # message inside it can neither start a line of its own nor carry escape sequences
            lines = self.formatException(record.exc_info).splitlines()
            text += "".join("\n    " + escape_controls(line) for line in lines)
        return text


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def _level_name(levelno: int) -> str:
    if levelno <= TRACE:
        return "TRACE"
    if levelno >= logging.ERROR:
        return "ERROR"
    return {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}.get(levelno, "INFO")


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self._level


def configure_logging(
    config: LogSettings, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> None:
    """Install handlers and levels on the root logger from the configuration (idempotent)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    default, targets = parse_filter(config.log_filter)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_restate", False):
            root.removeHandler(handler)
    for stream, is_err in ((out, False), (err, True)):
        handler = logging.StreamHandler(stream)
        handler._restate = True  # type: ignore[attr-defined]
        if is_err:
            handler.setLevel(logging.WARNING)
        else:
            handler.addFilter(_Below(logging.WARNING))
        if config.log_format == "json":
            handler.setFormatter(_JsonFormatter())
        else:
            colour = not config.log_disable_ansi_codes and config.log_format == "pretty" and stream.isatty()
            handler.setFormatter(_TextFormatter(compact=config.log_format == "compact", colour=colour))
        root.addHandler(handler)
    root.setLevel(default)
    # Loggers configured by an earlier call go back to inheriting, so the new filter is the whole truth.
    for name in logging.root.manager.loggerDict:
        if name.split(".")[0] in _ROOT_LOGGERS or name in targets:
            logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in sorted(targets.items()):
        logging.getLogger(name).setLevel(level)
