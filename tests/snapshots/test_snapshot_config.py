"""`[worker.snapshots]`: upstream's keys, their environment forms, and refused destinations."""

from __future__ import annotations

import tomllib

import pytest
from restate_server.config import ConfigError, dump_config, load_config
from restate_server.config.worker import ObjectStoreOptions, SnapshotsOptions


def test_snapshot_keys_from_the_environment_are_read_and_used() -> None:
    env = {
        "RESTATE_WORKER__SNAPSHOTS__DESTINATION": "s3://bucket/prefix",
        "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": "1000",
        "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL": "10m",
        "RESTATE_WORKER__SNAPSHOTS__NUM_RETAINED": "3",
        "RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP": "true",
        "RESTATE_WORKER__SNAPSHOTS__AWS_REGION": "eu-west-1",
    }
    loaded, _ = load_config([], env)
    assert loaded.config.worker.snapshots == SnapshotsOptions(
        destination="s3://bucket/prefix",
        snapshot_interval=600.0,
        snapshot_interval_num_records=1000,
        num_retained=3,
        object_store=ObjectStoreOptions(
            aws_endpoint_url="http://127.0.0.1:9000", aws_allow_http=True, aws_region="eu-west-1"
        ),
    )
    assert loaded.unused_keys == []
    dumped = tomllib.loads(dump_config(loaded.config))["worker"]["snapshots"]
    assert dumped["snapshot-interval"] == "10m"
    assert dumped["aws-allow-http"] is True


def test_unimplemented_snapshot_keys_are_reported_unused() -> None:
    loaded, _ = load_config([], {"RESTATE_WORKER__SNAPSHOTS__AWS_PROFILE": "dev"})
    assert loaded.unused_keys == ["worker.snapshots.aws-profile"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "DESTINATION",
            "gs://bucket/x",
            r"worker\.snapshots\.destination.*s3://bucket/prefix or file:///path",
        ),
        ("SNAPSHOT_INTERVAL_NUM_RECORDS", "0", r"snapshot-interval-num-records.*positive"),
        ("NUM_RETAINED", "0", r"num-retained"),
        ("SNAPSHOT_INTERVAL", "0s", r"snapshot-interval.*zero"),
    ],
    ids=["unsupported-scheme", "zero-records", "zero-retained", "zero-interval"],
)
def test_bad_snapshot_settings_are_refused(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config([], {f"RESTATE_WORKER__SNAPSHOTS__{variable}": value})
