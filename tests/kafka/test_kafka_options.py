"""The Kafka options of `[ingress]`: clusters (with any librdkafka key) and the in-flight budget."""

from __future__ import annotations

from pathlib import Path

from restate_server.config import dump_config, load_config
from restate_server.config.ingress import DEFAULT_INFLIGHT_MEMORY_BUDGET


def test_clusters_and_inflight_budget_from_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text(
        '[[ingress.kafka-clusters]]\nname = "c"\nbrokers = ["PLAINTEXT://b:9092"]\n"sasl.username" = "me"\n'
        '[ingress.ingestion]\ninflight-memory-budget = "2 MiB"\n'
    )
    loaded, _ = load_config(["--config-file", str(path)], {})
    ingress = loaded.config.ingress
    assert [(c.name, c.brokers, c.properties) for c in ingress.kafka_clusters] == [
        ("c", ["PLAINTEXT://b:9092"], {"sasl.username": "me"})
    ]
    assert ingress.ingestion_inflight_memory_budget == 2 * 1024 * 1024
    assert "inflight-memory-budget" in dump_config(loaded.config)

    from_env, _ = load_config([], {"RESTATE_INGRESS__INGESTION__INFLIGHT_MEMORY_BUDGET": "64KiB"})
    assert from_env.config.ingress.ingestion_inflight_memory_budget == 64 * 1024
    default, _ = load_config([], {})
    assert default.config.ingress.ingestion_inflight_memory_budget == DEFAULT_INFLIGHT_MEMORY_BUDGET
