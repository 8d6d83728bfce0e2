"""Loads the configuration like upstream `restate-server` does.

Sources, each overriding the previous one (upstream's `crates/types/src/config_loader.rs`): built-in
defaults, the TOML file (`--config-file` or `RESTATE_CONFIG`), `RESTATE_*` environment variables
(sections joined by `__`, `_` read as `-`, values typed as TOML inline values when they parse as one),
`RUST_LOG` for `log-filter`, then the command-line flags. Key names, defaults and units follow upstream
1.7 (`crates/types/src/config/*.rs`); each section module (`common`, `worker`, `ingress`, `admin`)
owns its options, the keys it reads and its part of `--dump-config`.

Upstream ignores keys it does not know; this server is stricter in files and flags, because a silently
ignored typo is a production outage: a key upstream knows but no section reads is accepted and reported
in `LoadedConfig.unused_keys`, and any other key is a `ConfigError`. The environment is different: it
carries variables of other tools (the CLI, SDKs, Kubernetes service links) that share the `RESTATE_`
prefix, so an unknown `RESTATE_*` variable is ignored, as upstream ignores it, and named in
`LoadedConfig.ignored_env_vars` for one start-up warning. Parsing is pure (argv and environ are
parameters), so tests need no process or environment of their own.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from restate_server.config import (
    admin,
    cli,
    cluster,
    common,
    ingress,
    keys,
    layers,
    observability,
    worker,
)
from restate_server.config.common import Config
from restate_server.config.errors import ConfigError


@dataclass(slots=True)
class LoadedConfig:
    """A loaded configuration plus the keys that were given but are not used by this server."""

    config: Config
    unused_keys: list[str] = field(default_factory=list)
    """Upstream keys that were set (in any source) that this server accepts and ignores."""
    config_file: Path | None = None
    """The TOML file that was read, if any."""
    ignored_env_vars: list[str] = field(default_factory=list)
    """`RESTATE_*` variables that name no configuration key, each with a did-you-mean hint if one is
    close (ignored, as upstream ignores them)."""


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[LoadedConfig, argparse.Namespace]:
    """Parse flags, read the file and environment, and build the configuration (ConfigError if bad)."""
    env = dict(os.environ if environ is None else environ)
    args = cli.build_parser().parse_args(list(argv) if argv is not None else None)
    sources: list[layers.Layer] = []
    config_file: Path | None = args.config_file
    if config_file is None and env.get("RESTATE_CONFIG"):
        config_file = Path(env["RESTATE_CONFIG"])
    if config_file is not None:
        sources.append(_file_layer(config_file))
    ignored: list[str] = []
    sources.extend(_env_layers(env, ignored))
    sources.extend(cli.cli_layers(args))
    merged = layers.merge(sources)
    unused = sorted(path for path in merged if not any(_covers(used, path) for used in _USED_KEYS))
    config = _build(merged)
    loaded = LoadedConfig(
        config=config, unused_keys=unused, config_file=config_file, ignored_env_vars=ignored
    )
    return loaded, args


def _file_layer(path: Path) -> layers.Layer:
    source = f"config file '{path}'"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    layer = layers.Layer(source)
    for key, value in layers.flatten(data):
        _check_known(key, f"in {source}", value)
        layer.values[key] = value
    return layer


def _env_layers(env: Mapping[str, str], ignored: list[str]) -> list[layers.Layer]:
    """One layer per configuration variable; the names of unknown `RESTATE_*` ones go to `ignored`."""
    found = []
    for name in sorted(env):
        # figment matches the prefix regardless of case; keys are lower-cased either way.
        if not name.upper().startswith("RESTATE_") or name.upper() == "RESTATE_CONFIG":
            continue
        parts = name[len("RESTATE_") :].lower().split("__")
        key = ".".join(part.replace("_", "-") for part in parts)
        if not _is_known(key):
            if not keys.is_non_config_env_var(name.upper()):  # else another tool's: not worth a word
                ignored.append(_ignored(name, key))
            continue
        layer = layers.Layer(f"environment variable {name}")
        value = layers.env_value(env[name])
        sub_values = list(layers.flatten(layers.nest(key, value)))
        unknown = [sub_key for sub_key, _ in sub_values if not _is_known(sub_key)]
        if unknown:
            ignored.append(f"{name} (its key '{unknown[0]}' is not one)")
            continue
        for sub_key, sub_value in sub_values:
            _check_known(sub_key, f"from environment variable {name}", sub_value)
            # A scalar keeps its text: a string key must read `inf` or `1` as written.
            layer.values[sub_key] = sub_value
            if sub_key == key:
                layer.raw[key] = env[name]
        found.append(layer)
    if env.get("RUST_LOG"):
        rust_log = layers.Layer("environment variable RUST_LOG")
        rust_log.values["log-filter"] = env["RUST_LOG"]
        found.append(rust_log)
    return found


def _ignored(name: str, key: str) -> str:
    hint = keys.suggest(key)
    return f"{name} (did you mean '{hint}'?)" if hint else name


def _check_known(key: str, where: str, value: object = None) -> None:
    if key in keys.SECTIONS and key not in keys.OPEN_KEYS and value is not None:
        raise ConfigError(f"'{key}' {where} must be a table of keys, not {value!r}")
    if _is_known(key):
        return
    hint = keys.suggest(key)
    suffix = f"; did you mean '{hint}'?" if hint else "; it is not a key of restate-server 1.7"
    raise ConfigError(f"unknown configuration key '{key}' {where}{suffix}")


# Keys this server reads beyond upstream's catalogue (each section lists its own in OWN_KEYS).
_OWN_KEYS = frozenset((*ingress.OWN_KEYS, *admin.OWN_KEYS))


def _is_known(key: str) -> bool:
    return keys.is_known(key) or key in _OWN_KEYS


def _covers(used: str, path: str) -> bool:
    return path == used or path.startswith(used + ".")


# Keys some section reads. A set key outside these (and known upstream) is reported as unused.
_USED_KEYS = (
    *common.USED_KEYS,
    *observability.USED_KEYS,
    *cluster.USED_KEYS,
    *worker.USED_KEYS,
    *ingress.USED_KEYS,
    *admin.USED_KEYS,
    *_OWN_KEYS,
)


def _build(merged: Mapping[str, layers.Setting]) -> Config:
    return common.read(layers.Reader(merged, ConfigError))


def dump_config(config: Config) -> str:
    """The effective configuration as TOML with upstream's key names (what `--dump-config` prints)."""
    return layers.dumps(common.dump(config))
