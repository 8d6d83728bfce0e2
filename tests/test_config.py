"""Configuration loading: precedence, durations, unknown and unused keys, and the TOML dump."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from restate_server.config import (
    Config,
    ConfigError,
    KafkaClusterOptions,
    RetryPolicyOptions,
    dump_config,
    format_duration,
    keys as config_keys,
    load_config,
    parse_duration,
)
from restate_server.config.units import format_bytes, format_iso_duration, parse_bytes
from restate_server.observability.logging import logger_name, parse_filter


def _load(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Config:
    loaded, _ = load_config(argv or [], env or {})
    return loaded.config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "restate.toml"
    path.write_text(text)
    return path


# --- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        (0, 0.0),
        ("1h", 3600.0),
        ("5 hours", 18000.0),
        ("1s 500ms", 1.5),
        ("1s500ms", 1.5),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h, 30m", 5400.0),
        ("2 minutes 3 seconds", 123.0),
        ("1.5h", 5400.0),
        ("10us", 0.00001),
        ("250ns", 0.00000025),
        ("01:02:03", 3723.0),
        ("PT10S", 10.0),
        ("P1D", 86400.0),
        ("pt1m30s", 90.0),
        ("P1DT2H", 93600.0),
        ("PT0.5S", 0.5),
    ],
    ids=lambda v: repr(v),
)
def test_parse_duration_accepts_friendly_and_iso(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "10", 10, "1x", "1 year", "P1M", "1m 1h", "1h 1h", "-1s", "1.5s 2ms", "PT", "P", "abc"],
    ids=lambda v: repr(v),
)
def test_parse_duration_rejects_garbage(text: str | int) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (86400, "1d"),
        (60, "1m"),
        (600, "10m"),
        (0.5, "500ms"),
        (5400, "1h 30m"),
        (1.5, "1s 500ms"),
        (90061.001, "1d 1h 1m 1s 1ms"),
    ],
    ids=lambda v: repr(v),
)
def test_format_duration_matches_upstream_compact_style(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_iso_duration() -> None:
    assert format_iso_duration(10) == "PT10S"
    assert format_iso_duration(86400) == "P1D"
    assert format_iso_duration(0) == "PT0S"
    assert format_iso_duration(1.5) == "PT1.5S"


def test_byte_sizes_parse_and_print_like_bytesize() -> None:
    assert parse_bytes("10 MiB") == 10 * 1024 * 1024
    assert parse_bytes("4.0 GiB") == 4 * 1024**3
    assert parse_bytes("500kb") == 500_000
    assert parse_bytes(1234) == 1234
    assert format_bytes(10 * 1024 * 1024) == "10.0 MiB"
    assert format_bytes(512) == "512 B"
    with pytest.raises(ValueError, match="byte size"):
        parse_bytes("ten megs")


# --- defaults and precedence -----------------------------------------------------------------------


def test_defaults_match_upstream() -> None:
    config = _load()
    assert config.cluster_name == "localcluster"
    assert config.base_dir == Path("restate-data")
    assert config.ingress.bind_address == "0.0.0.0:8080"
    assert config.admin.bind_address == "0.0.0.0:9070"
    assert config.bind_address == "0.0.0.0:5122"
    assert config.default_num_partitions == 24
    assert config.default_journal_retention == 86400.0
    assert config.default_state_history_retention == 86400.0  # ours: the Replay API's history
    assert config.default_retry_policy == RetryPolicyOptions(
        initial_interval=0.5,
        exponentiation_factor=2.0,
        max_attempts=70,
        max_interval=60.0,
        on_max_attempts="pause",
    )
    assert config.worker.invoker.inactivity_timeout == 60.0
    assert config.worker.invoker.abort_timeout == 600.0
    assert config.worker.invoker.max_protocol_version == 7
    assert config.log_filter == "warn,restate=info"
    assert config.log_format == "pretty"
    assert config.node_dir == config.base_dir / config.node_name
    assert config.effective_request_headers() == {"x-restate-cluster-name": "localcluster"}


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'cluster-name = "from-file"\nnode-name = "file-node"\ndefault-num-partitions = 8\n'
        '[admin]\nbind-address = "127.0.0.1:1"\n',
    )
    env = {"RESTATE_CLUSTER_NAME": "from-env", "RESTATE_ADMIN__BIND_ADDRESS": "127.0.0.1:2"}
    config = _load(["--config-file", str(path), "--cluster-name", "from-flag"], env)
    assert config.cluster_name == "from-flag"  # flag beats env beats file
    assert config.admin.bind_address == "127.0.0.1:2"  # env beats file
    assert config.node_name == "file-node"
    assert config.default_num_partitions == 8


def test_restate_config_env_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'cluster-name = "via-env-file"\n')
    assert _load([], {"RESTATE_CONFIG": str(path)}).cluster_name == "via-env-file"


def test_env_values_are_typed_like_toml() -> None:
    env = {
        "RESTATE_DEFAULT_NUM_PARTITIONS": "4",
        "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s",
        "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": "PT5S",
        "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "unlimited",
        "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS": "kill",
        "RESTATE_INGRESS__KAFKA_CLUSTERS": '[{name="my-cluster",brokers=["PLAINTEXT://broker:9092"]}]',
        "RESTATE_WORKER__SNAPSHOTS__DESTINATION": "s3://bucket/prefix",
        "RESTATE_NODE_NAME": "123",
        "RESTATE_CLUSTER_NAME": "inf",
    }
    config = _load([], env)
    assert config.default_num_partitions == 4
    assert config.worker.invoker.inactivity_timeout == 0.0
    assert config.worker.invoker.abort_timeout == 5.0
    assert config.default_retry_policy.max_attempts is None
    assert config.default_retry_policy.on_max_attempts == "kill"
    assert config.ingress.kafka_clusters == [
        KafkaClusterOptions(name="my-cluster", brokers=["PLAINTEXT://broker:9092"], properties={})
    ]
    assert config.worker.snapshots.destination == "s3://bucket/prefix"
    assert config.node_name == "123"
    assert config.cluster_name == "inf"


def test_rust_log_overrides_log_filter_but_not_the_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, 'log-filter = "info"\n')
    assert _load(["-c", str(path)], {"RUST_LOG": "debug"}).log_filter == "debug"
    assert _load(["-c", str(path), "--log-filter", "trace"], {"RUST_LOG": "debug"}).log_filter == "trace"


def test_protocol_v7_flag_caps_the_protocol() -> None:
    assert (
        _load([], {"RESTATE_EXPERIMENTAL_ENABLE_PROTOCOL_V7": "false"}).worker.invoker.max_protocol_version
        == 6
    )


def test_deprecated_top_level_service_client_keys_still_work(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'request-identity-private-key-pem-file = "/keys/a.pem"\n[additional-request-headers]\nx-a = "1"\n',
    )
    config = _load(["-c", str(path)])
    assert config.request_identity_private_key_pem_file == Path("/keys/a.pem")
    assert config.additional_request_headers == {"x-a": "1"}
    newer = _write(tmp_path, '[worker.invoker]\nrequest-identity-private-key-pem-file = "/keys/b.pem"\n')
    assert _load(["-c", str(newer)]).request_identity_private_key_pem_file == Path("/keys/b.pem")


def test_message_size_limit_is_clamped_by_networking(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[worker.invoker]\nmessage-size-limit = "64 MiB"\n[networking]\nmessage-size-limit = "1 MiB"\n',
    )
    assert _load(["-c", str(path)]).worker.invoker.message_size_limit == 1024 * 1024


# --- unknown and unused keys -----------------------------------------------------------------------


def test_unknown_key_in_file_is_an_error_with_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, '[admin]\nbind-adress = "0.0.0.0:9070"\n')
    with pytest.raises(ConfigError) as info:
        _load(["--config-file", str(path)])
    message = str(info.value)
    assert "RT0002" in message
    assert "admin.bind-adress" in message
    assert str(path) in message
    assert "did you mean 'admin.bind-address'" in message


def test_unknown_env_variables_are_ignored_and_named_with_a_hint() -> None:
    loaded, _ = load_config(
        [],
        {
            "RESTATE_DEFAULT_NUM_PARTITION": "4",
            "RESTATE_WORKER__INVOKER__ZZZZZZZ": "1",
            "RESTATE_CLUSTER_NAME": "kept",
        },
    )
    assert loaded.config.default_num_partitions == 24
    assert loaded.config.cluster_name == "kept"
    assert loaded.ignored_env_vars == [
        "RESTATE_DEFAULT_NUM_PARTITION (did you mean 'default-num-partitions'?)",
        "RESTATE_WORKER__INVOKER__ZZZZZZZ",
    ]


def test_unknown_key_inside_an_env_table_ignores_the_variable() -> None:
    loaded, _ = load_config([], {"RESTATE_WORKER__SNAPSHOTS": '{dest="s3://b"}'})
    assert loaded.config.worker.snapshots.destination is None
    assert loaded.ignored_env_vars == [
        "RESTATE_WORKER__SNAPSHOTS (its key 'worker.snapshots.dest' is not one)"
    ]


def test_cli_config_home_variable_is_ignored_silently() -> None:
    """`RESTATE_CONFIG_HOME` is the CLI's (its docs tell users to export it): never an error."""
    loaded, _ = load_config([], {"RESTATE_CONFIG_HOME": "/home/u/.config/restate"})
    assert loaded.ignored_env_vars == []
    assert loaded.unused_keys == []


def test_upstream_dump_config_output_is_accepted() -> None:
    """What the real restate-server 1.7.12 prints for --dump-config loads, every key accepted."""
    fixture = Path(__file__).parent / "data" / "upstream-dump-config-1.7.12.toml"
    loaded, _ = load_config(["-c", str(fixture)], {})
    assert loaded.config.cluster_name == "localcluster"
    assert loaded.config.admin.query_engine.memory_size == 1024**3
    assert loaded.config.worker.invoker.concurrent_invocations_limit == 1000
    assert "worker.storage.rocksdb-l0-num-compaction-trigger" in loaded.unused_keys
    assert "log-server.rocksdb-partition-sst-by-loglet" in loaded.unused_keys
    used = {"cluster-name", "default-num-partitions", "disable-prometheus", "admin.disable-web-ui"}
    assert not used & set(loaded.unused_keys)


def test_other_tools_restate_variables_are_ignored() -> None:
    env = {
        "RESTATE_ADMIN_URL": "http://localhost:9070",
        "RESTATE_AUTH_TOKEN": "t",
        "RESTATE_HOST": "localhost",
        "RESTATE_LOGGING": "DEBUG",
        "RESTATE_PORT": "tcp://10.0.0.1:8080",
        "RESTATE_SERVICE_HOST": "10.0.0.1",
        "RESTATE_PORT_8080_TCP_ADDR": "10.0.0.1",
        "RESTATE_CLUSTER_SERVICE_PORT_ADMIN": "9070",
        "UNRELATED": "x",
    }
    loaded, _ = load_config([], env)
    assert loaded.unused_keys == []


def test_known_but_unused_keys_are_listed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'roles = ["worker", "admin"]\n[bifrost]\ndefault-provider = "local"\n'
        '[worker.storage]\nrocksdb-memory-budget = "1 GiB"\n[admin]\ndisable-web-ui = true\n'
        '[tracing-headers]\nauthorization = "Bearer x"\n',  # the last two are used
    )
    loaded, _ = load_config(
        ["-c", str(path), "--auto-provision", "false"], {"RESTATE_BIFROST__SEAL_RETRY_INTERVAL": "1s"}
    )
    assert loaded.unused_keys == [
        "bifrost.seal-retry-interval",
        "roles",
        "worker.storage.rocksdb-memory-budget",
    ]


def test_open_maps_accept_any_sub_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[ingress.kafka-clusters]]\nname = "k"\nbrokers = ["b:9092"]\n"sasl.username" = "u"\n'
        '[worker.invoker.additional-request-headers]\n"x-any-header" = "v"\n',
    )
    config = _load(["-c", str(path)])
    assert config.ingress.kafka_clusters[0].properties == {"sasl.username": "u"}
    assert config.effective_request_headers() == {"x-any-header": "v"}


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("default-num-partitions = 0\n", "default-num-partitions"),
        ('default-num-partitions = "many"\n', "default-num-partitions"),
        ('log-format = "fancy"\n', "log-format"),
        ('[worker.invoker]\ninactivity-timeout = "soon"\n', "worker.invoker.inactivity-timeout"),
        ("[worker.invoker]\ninactivity-timeout = 60\n", "worker.invoker.inactivity-timeout"),
        ('[default-retry-policy]\ninitial-interval = "0"\n', "default-retry-policy.initial-interval"),
        ("[default-retry-policy]\nmax-attempts = 0\n", "default-retry-policy.max-attempts"),
        ('[[ingress.kafka-clusters]]\nname = "k"\n', "ingress.kafka-clusters"),
    ],
    ids=[
        "zero-partitions",
        "text-partitions",
        "format",
        "duration-text",
        "duration-number",
        "zero-interval",
        "zero-attempts",
        "kafka-no-brokers",
    ],
)
def test_invalid_values_name_key_and_source(tmp_path: Path, toml: str, key: str) -> None:
    path = _write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        _load(["-c", str(path)])
    assert f"'{key}'" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_malformed_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _load(["-c", str(tmp_path / "nope.toml")])
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(["-c", str(_write(tmp_path, "a = = 1\n"))])


def test_catalogue_covers_the_keys_the_docs_use() -> None:
    for key in (
        "worker.snapshots.destination",
        "metadata-client.addresses",
        "default-replication",
        "worker.invoker.invocation-throttling.rate",
        "bifrost.replicated-loglet.readahead-records",
        "log-server.rocksdb-disable-wal-fsync",
        "networking.connect-retry-policy.max-interval",
        "admin.query-engine.memory-size",
        "experimental-enable-protocol-v7",
    ):
        assert config_keys.is_known(key), key
    assert not config_keys.is_known("worker.invoker.nonsense")


# --- dump ------------------------------------------------------------------------------------------


def test_dump_config_round_trips(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'cluster-name = "c"\nnode-name = "n1"\ndefault-journal-retention = "0"\n'
        '[default-retry-policy]\nmax-attempts = "unlimited"\ninitial-interval = "1s 500ms"\n'
        '[worker.invoker]\ninactivity-timeout = "1h 30m"\nconcurrent-invocations-limit = 10\n'
        '[worker.invoker.additional-request-headers]\n"x-h" = "v \\"q\\""\n'
        '[worker.snapshots]\ndestination = "file:///tmp/snaps"\nsnapshot-interval-num-records = 1000\n'
        '[[ingress.kafka-clusters]]\nname = "k"\nbrokers = ["b:9092"]\n"sasl.username" = "u"\n'
        '[ingress]\nadvertised-ingress-endpoint = "http://x:8080/"\n',
    )
    original = _load(["-c", str(path)])
    text = dump_config(original)
    data = tomllib.loads(text)
    assert data["cluster-name"] == "c"
    assert data["default-retry-policy"]["initial-interval"] == "1s 500ms"
    assert data["worker"]["invoker"]["inactivity-timeout"] == "1h 30m"
    assert data["worker"]["invoker"]["abort-timeout"] == "10m"
    dumped = _write(tmp_path, text)
    again, unused = (
        load_config(["-c", str(dumped)], {})[0].config,
        load_config(["-c", str(dumped)], {})[0].unused_keys,
    )
    assert again == original
    assert unused == []


def test_dump_of_defaults_uses_upstream_spelling() -> None:
    data = tomllib.loads(dump_config(_load([], {"RESTATE_NODE_NAME": "n"})))
    assert data["default-journal-retention"] == "1d"
    assert data["default-state-history-retention"] == "1d"
    assert data["default-retry-policy"] == {
        "initial-interval": "500ms",
        "exponentiation-factor": 2.0,
        "max-attempts": 70,
        "on-max-attempts": "pause",
        "max-interval": "1m",
    }
    assert data["worker"]["invoker"]["message-size-warning"] == "10.0 MiB"
    assert data["admin"]["bind-address"] == "0.0.0.0:9070"


# --- log filter ------------------------------------------------------------------------------------


def test_log_filter_maps_upstream_targets_to_python_loggers() -> None:
    default, targets = parse_filter("warn,restate=info,restate_ingress_http=trace,aiohttp=debug,bogus=loud")
    assert default == 30
    assert targets == {"restate_server": 20, "restate_server.ingress": 5, "aiohttp": 10}
    assert (
        logger_name("restate_worker::partition::state_machine")
        == "restate_server.worker.partition.state_machine"
    )


def test_bind_ip_and_ports_compose_like_upstream_listeners() -> None:
    config = _load(["--bind-ip", "127.0.0.1", "--bind-port", "15122"], {"RESTATE_ADMIN__BIND_PORT": "19070"})
    assert config.bind_address == "127.0.0.1:15122"
    assert config.advertised_address == "http://127.0.0.1:15122/"
    assert config.admin.bind_address == "127.0.0.1:19070"  # inherits the node's IP, not its port
    assert config.ingress.bind_address == "127.0.0.1:8080"
    explicit = _load([], {"RESTATE_INGRESS__BIND_ADDRESS": "[::1]:1", "RESTATE_INGRESS__BIND_PORT": "2"})
    assert explicit.ingress.bind_address == "[::1]:1"  # bind-address wins over bind-ip/bind-port


def test_section_given_a_scalar_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'worker' .* must be a table"):
        _load(["-c", str(_write(tmp_path, "worker = 5\n"))])
    with pytest.raises(ConfigError, match="RESTATE_ADMIN"):
        _load([], {"RESTATE_ADMIN": "x"})


def test_env_var_can_set_one_entry_of_a_map(tmp_path: Path) -> None:
    path = _write(tmp_path, '[worker.invoker.additional-request-headers]\nx-a = "1"\n')
    env = {"RESTATE_WORKER__INVOKER__ADDITIONAL_REQUEST_HEADERS__X_B": "2"}
    assert _load(["-c", str(path)], env).additional_request_headers == {"x-a": "1", "x-b": "2"}


def test_state_history_retention_is_read_from_the_environment() -> None:
    config = _load([], {"RESTATE_DEFAULT_STATE_HISTORY_RETENTION": "0s"})
    assert config.default_state_history_retention == 0.0


def test_cluster_keys_from_the_environment_as_the_operator_sets_them() -> None:
    env = {
        "RESTATE_METADATA_CLIENT__TYPE": "etcd",
        "RESTATE_METADATA_CLIENT__ADDRESSES": '["http://h1:2379","http://h2:2379"]',
        "RESTATE_BIFROST__DEFAULT_PROVIDER": "replicated",
        "RESTATE_DEFAULT_REPLICATION": "2",
        "RESTATE_AUTO_PROVISION": "true",
    }
    cluster = _load([], env).cluster
    assert cluster.clustered
    assert cluster.metadata_addresses == ("http://h1:2379", "http://h2:2379")
    assert cluster.log_provider == "etcd"
    assert cluster.default_replication == 2
    assert cluster.auto_provision
    single = _load([], {}).cluster
    assert (single.clustered, single.log_provider, single.default_replication) == (False, "local", 1)


def test_cluster_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one address"):
        _load([], {"RESTATE_METADATA_CLIENT__TYPE": "etcd"})
    with pytest.raises(ConfigError, match="etcd log needs"):
        _load([], {"RESTATE_BIFROST__DEFAULT_PROVIDER": "etcd"})
    # upstream's default (what its --dump-config prints): on the embedded metadata store, the local log
    assert _load([], {"RESTATE_BIFROST__DEFAULT_PROVIDER": "replicated"}).cluster.log_provider == "local"
    path = _write(tmp_path, "default-replication = { node = 3 }\n")
    assert _load(["-c", str(path)]).cluster.default_replication == 3
