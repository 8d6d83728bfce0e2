"""Key-value plumbing for the configuration loader: layers, typed reads, and TOML output.

Kept apart from the section modules so they hold only what the options are. Every source (file,
environment, flags) becomes a `Layer` of dotted keys to leaf values; `merge` keeps, for each key, the
value of the last layer that set it and the name of that layer, so a bad value can be reported with
where it came from. `Reader` turns settings into typed values, raising the caller's error type.
`dumps` writes the small subset of TOML the configuration needs (tomllib only reads).
"""

from __future__ import annotations

import datetime
import json
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from restate_server.config import keys
from restate_server.config.units import parse_bytes, parse_duration

T = TypeVar("T")
S = TypeVar("S", bound=str)


@dataclass(slots=True)
class Layer:
    """One source of settings, e.g. "config file 'restate.toml'" or "environment variable RESTATE_X"."""

    source: str
    values: dict[str, object] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    """The text a value was typed from (environment variables), for keys that want a string."""


@dataclass(frozen=True, slots=True)
class Setting:
    """The winning value of one key and the source it came from."""

    value: object
    source: str
    raw: str | None = None


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, object]]:
    """Dotted leaf keys of a nested table; open maps (headers, librdkafka settings) stay whole."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in keys.OPEN_KEYS:
            yield from flatten(value, path + ".")  # an empty table sets nothing
        else:
            yield path, value


def nest(path: str, value: object) -> dict[str, object]:
    """`nest("a.b", 1)` is `{"a": {"b": 1}}` (so an env var holding a table flattens like a file)."""
    out: object = value
    for part in reversed(path.split(".")):
        out = {part: out}
    assert isinstance(out, dict)
    return out


def env_value(text: str) -> object:
    """An env var's value typed as a TOML inline value if it is one, else the text itself.

    Upstream's figment reads `24` as an integer, `true` as a boolean and `[...]`/`{...}` as arrays and
    tables; anything else (`0.0.0.0:8080`, `1h`) stays a string. TOML dates and times stay text.
    """
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    if isinstance(value, datetime.date | datetime.time):
        return text
    return value


def merge(layers: Sequence[Layer]) -> dict[str, Setting]:
    """The last layer to set a key wins; a table set later replaces leaves below it."""
    merged: dict[str, Setting] = {}
    for layer in layers:
        for path, value in layer.values.items():
            owner = _open_owner(path)
            if owner is not None:  # e.g. RESTATE_..._ADDITIONAL_REQUEST_HEADERS__X_FOO: one entry of a map
                previous = merged.get(owner)
                entries = dict(previous.value) if previous and isinstance(previous.value, dict) else {}
                entries[path[len(owner) + 1 :]] = value
                merged[owner] = Setting(entries, layer.source)
                continue
            previous = merged.get(path)
            if isinstance(value, dict) and previous is not None and isinstance(previous.value, dict):
                value = {**previous.value, **value}  # maps merge key by key, as figment merges dicts
            for stale in [k for k in merged if k.startswith(path + ".")]:
                del merged[stale]
            for depth in range(1, path.count(".") + 1):
                merged.pop(".".join(path.split(".")[:depth]), None)
            merged[path] = Setting(value, layer.source, layer.raw.get(path))
    return merged


def _open_owner(path: str) -> str | None:
    """The open map (headers, properties) that `path` is an entry of, if any."""
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:depth])
        if prefix in keys.OPEN_KEYS:
            return prefix
    return None


class Reader:
    """Typed access to merged settings with upstream's defaults; errors name the key and source."""

    def __init__(self, merged: Mapping[str, Setting], error: Callable[[str], Exception]) -> None:
        self._merged = merged
        self._error = error

    def _fail(self, path: str, reason: str) -> Exception:
        setting = self._merged[path]
        return self._error(f"invalid value {setting.value!r} for '{path}' ({setting.source}): {reason}")

    def _convert(self, path: str, default: T, convert: Callable[[object], T]) -> T:
        setting = self._merged.get(path)
        if setting is None:
            return default
        try:
            return convert(setting.value)
        except (ValueError, TypeError) as exc:
            raise self._fail(path, str(exc)) from None

    def string(self, path: str, default: str) -> str:
        setting = self._merged.get(path)
        if setting is not None and setting.raw is not None:
            return setting.raw
        return self._convert(path, default, _as_str)

    def optional_str(self, path: str) -> str | None:
        setting = self._merged.get(path)
        if setting is not None and setting.raw is not None:
            return setting.raw
        return self._convert(path, None, _as_str)

    def integer(
        self, path: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._convert(path, default, _as_int)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self._fail(path, f"must be between {minimum} and {maximum}")
        return value

    def optional_int(self, path: str, default: int | None = None) -> int | None:
        value = self._convert(path, default, _as_int)
        if value is not None and value < 1:
            raise self._fail(path, "must be a positive integer")
        return value

    def number(self, path: str, default: float) -> float:
        return self._convert(path, default, _as_float)

    def boolean(self, path: str, default: bool) -> bool:
        return self._convert(path, default, _as_bool)

    def duration(self, path: str, default: float, *, non_zero: bool = False) -> float:
        value = self._convert(path, default, _as_duration)
        if non_zero and value == 0:
            raise self._fail(path, "duration cannot be zero")
        return value

    def bytes(self, path: str, default: int, *, non_zero: bool = False) -> int:
        value = self._convert(path, default, _as_bytes)
        if non_zero and value == 0:
            raise self._fail(path, "size cannot be zero")
        return value

    def choice(self, path: str, default: S, choices: Sequence[S]) -> S:
        value: str = self._convert(path, str(default), _as_str)
        for choice in choices:
            if value.lower() == choice:
                return choice
        raise self._fail(path, "expected one of " + ", ".join(repr(c) for c in choices))

    def max_attempts(self, path: str, default: int) -> int | None:
        value = self._merged.get(path)
        if value is not None and isinstance(value.value, str) and value.value in ("unlimited", "infinite"):
            return None
        result = self._convert(path, default, _as_int)
        if result < 1:
            raise self._fail(path, "expected a positive integer or 'unlimited'")
        return result

    def listener_address(self, prefix: str, default_port: int, bind_ip: str | None) -> str:
        """A listener's `bind-address`, else `bind-ip` (inherited from the node's) and `bind-port`.

        As upstream's `ListenerOptions`: admin and ingress inherit the node's `bind-ip`, never its port.
        """
        explicit = self.optional_str(prefix + "bind-address")
        if explicit is not None:
            return explicit
        port = self.integer(prefix + "bind-port", default_port, minimum=0, maximum=65535)
        host = bind_ip or "0.0.0.0"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def error(self, path: str, reason: str) -> Exception:
        """The caller's error for a value that reads fine but makes no sense (names key and source)."""
        if path not in self._merged:
            return self._error(f"'{path}' is not set: {reason}")
        return self._fail(path, reason)

    def string_list(self, path: str) -> list[str]:
        """An array of strings; a string is split on commas (`a,b` as an environment variable)."""

        def convert(value: object) -> list[str]:
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise TypeError("expected an array of strings")

        return self._convert(path, [], convert)

    def replication(self, path: str, default: int) -> int:
        """Upstream's replication property: a number, or `{node = N}` (nodes are the only scope here)."""

        def convert(value: object) -> int:
            if isinstance(value, dict) and set(value) == {"node"}:
                value = value["node"]
            number = _as_int(value)
            if number < 1:
                raise ValueError("must be at least 1")
            return number

        return self._convert(path, default, convert)

    def headers(self, path: str) -> dict[str, str]:
        return self._convert(path, {}, _as_str_map)

    def kafka_clusters(self, path: str, make: Callable[..., T]) -> list[T]:
        def convert(value: object) -> list[T]:
            if not isinstance(value, list):
                raise TypeError("expected an array of tables with 'name' and 'brokers'")
            out = []
            for entry in value:
                if not isinstance(entry, dict) or "name" not in entry or "brokers" not in entry:
                    raise TypeError("every Kafka cluster needs 'name' and 'brokers'")
                brokers = entry["brokers"]
                if isinstance(brokers, str):
                    brokers = [b.strip() for b in brokers.split(",") if b.strip()]
                if not isinstance(brokers, list):
                    raise TypeError("'brokers' must be an array of host:port strings")
                extra = {k: _as_str(v) for k, v in entry.items() if k not in ("name", "brokers")}
                out.append(
                    make(name=_as_str(entry["name"]), brokers=[_as_str(b) for b in brokers], properties=extra)
                )
            return out

        return self._convert(path, [], convert)


def _as_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError("expected a string")


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError("expected an integer")


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number")
    if isinstance(value, int | float | str):
        result = float(value)
    else:
        raise TypeError("expected a number")
    if not math.isfinite(result):
        raise ValueError("expected a finite number")
    return result


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TypeError("expected true or false")


def _as_duration(value: object) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise TypeError("expected a duration such as '10s' or '1h 30m'")


def _as_bytes(value: object) -> int:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return parse_bytes(value)
    raise TypeError("expected a byte size such as '10 MiB'")


def _as_str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("expected a table of header names to values")
    return {str(k): _as_str(v) for k, v in value.items()}


def dumps(table: Mapping[str, object]) -> str:
    """TOML for nested dicts of str/int/float/bool/lists; scalars before sub-tables, as TOML requires."""
    lines: list[str] = []
    _dump_table(table, [], lines)
    return "\n".join(lines).strip() + "\n"


def _dump_table(table: Mapping[str, object], path: list[str], lines: list[str]) -> None:
    subtables = {k: v for k, v in table.items() if isinstance(v, dict) and v}  # empty tables say nothing
    arrays = {k: v for k, v in table.items() if _is_table_array(v)}
    for key, value in table.items():
        if key not in subtables and key not in arrays and value != {}:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables.items():
        assert isinstance(value, dict)
        lines.extend(["", "[" + ".".join(_key(p) for p in [*path, key]) + "]"])
        _dump_table(value, [*path, key], lines)
    for key, value in arrays.items():
        assert isinstance(value, list)
        for entry in value:
            lines.extend(["", "[[" + ".".join(_key(p) for p in [*path, key]) + "]]"])
            _dump_table(entry, [*path, key], lines)


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
