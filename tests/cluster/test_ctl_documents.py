"""The documents `restatectl` decodes, in upstream's serde shapes (checked against the real binary by
`tests/integration/test_restatectl.py`; here the shapes themselves, so a change shows up without it)."""

from __future__ import annotations

import itertools
import json

from restate_server.cluster.ctl import documents
from restate_server.cluster.ctl.documents import LogSegment, Node, NodeId


def _node(node_id: int, generation: int, name: str) -> Node:
    return Node(
        node_id=NodeId(id=node_id, generation=generation),
        name=name,
        address=f"http://127.0.0.1:{5120 + node_id}/",
        roles=("admin", "worker"),
    )


def test_encode_is_the_json_codec_byte_then_the_document() -> None:
    encoded = documents.encode({"version": 3})
    assert encoded[0] == 5
    assert json.loads(encoded[1:]) == {"version": 3}


def test_nodes_configuration_lists_nodes_by_id_as_pairs() -> None:
    doc = documents.nodes_configuration(
        version=4,
        cluster_name="c",
        fingerprint=7,
        nodes=[_node(2, 1, "b"), _node(1, 3, "a")],
        metadata_members=False,
    )
    assert doc["version"] == 4
    assert doc["cluster_fingerprint"] == 7
    assert doc["name_lookup"] == {"a": 1, "b": 2}
    nodes = doc["nodes"]
    assert isinstance(nodes, list)
    assert [entry[0] for entry in nodes] == [1, 2]
    first = nodes[0][1]["Node"]
    assert first["current_generation"] == [1, 3]
    assert first["address"] == "http://127.0.0.1:5121/"
    assert first["roles"] == ["admin", "worker"]
    assert first["metadata_server_config"] == {"metadata_server_state": "standby"}


def test_partition_table_covers_the_key_space_with_equal_ranges() -> None:
    doc = documents.partition_table(version=2, num_partitions=3, replication=2)
    assert doc["replication"] == {"limit": 2}
    partitions = doc["partitions"]
    assert isinstance(partitions, list)
    assert [p for p, _ in partitions] == [0, 1, 2]
    ranges = [(entry["key_range"]["start"], entry["key_range"]["end"]) for _, entry in partitions]
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 2**64 - 1
    assert all(before[1] + 1 == after[0] for before, after in itertools.pairwise(ranges))
    assert [entry["log_id"] for _, entry in partitions] == [0, 1, 2]


def test_logs_of_a_single_node_are_local() -> None:
    doc = documents.logs(version=1, chains={0: [LogSegment(base_lsn=1, kind="local")]}, replication=None)
    assert doc["config"] == {"default_provider": "local"}
    assert doc["logs"] == [
        [0, {"chain": [[1, {"kind": "local", "params": "", "index": 0, "created_at": None}]]}]
    ]


def test_replicated_segments_carry_upstream_loglet_params_and_a_sealed_chain_ends_with_a_marker() -> None:
    chains = {
        3: [
            LogSegment(base_lsn=1, kind="replicated", replication=2),
            LogSegment(base_lsn=40, kind="replicated", sequencer=NodeId(id=2, generation=5), replication=2),
            LogSegment(base_lsn=90, kind=documents.SEALED),
        ]
    }
    doc = documents.logs(version=9, chains=chains, replication=2)
    assert doc["config"] == {
        "default_provider": {"replicated": {"replication_property": "2", "target_nodeset_size": 0}}
    }
    logs = doc["logs"]
    assert isinstance(logs, list)
    [(log_id, chain)] = logs
    assert log_id == 3
    segments = chain["chain"]
    assert [(base, s["kind"], s["index"]) for base, s in segments] == [
        (1, "replicated", 0),
        (40, "replicated", 1),
        (90, "sealed", 2),
    ]
    params = json.loads(segments[1][1]["params"])
    assert params == {
        "loglet_id": (3 << 32) | 1,
        "sequencer": "N2:5",
        "replication": {"node": 2},
        "nodeset": [],
    }
    assert json.loads(segments[0][1]["params"])["sequencer"] == "N0:0"  # history: no known sequencer
    assert json.loads(segments[2][1]["params"])["sealed_at"] == 0
