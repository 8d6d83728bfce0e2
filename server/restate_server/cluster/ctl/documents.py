"""The cluster-wide documents `restatectl` reads, in the shape upstream's types deserialize.

`GetMetadata` answers with upstream's storage codec: one byte naming the codec, then the body.
Upstream writes these documents as flexbuffers, but its decoder of serde types also accepts JSON
(codec byte 5), so they are built here as plain JSON in the shape of upstream's serde derivations:
`NodesConfiguration` (nodes as `[id, {"Node": …}]` pairs, a generational id as `[id, generation]`),
`PartitionTable` (its serialization shadow: partitions as `[id, partition]` pairs, key ranges
inclusive) and `Logs` (chains as `[base_lsn, segment]` pairs; a replicated segment's parameters are
themselves a JSON string). Pure functions of their inputs, so the shapes are unit-tested.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from restate_server.ids import partition_key_range

JSON_CODEC = 5
"""Upstream's `StorageCodecKind::Json`."""

SEALED = "sealed"
"""The kind of upstream's marker segment that ends a sealed chain."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeId:
    """A node as upstream numbers it: a plain id, and the generation (restart count) it runs as."""

    id: int
    generation: int

    def __str__(self) -> str:
        return f"N{self.id}:{self.generation}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    node_id: NodeId
    name: str
    address: str
    """The advertised node-port URL `restatectl` connects to."""
    roles: tuple[str, ...]
    """Upstream's role names: admin, worker, http-ingress, log-server, metadata-server."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSegment:
    """One segment of a log's chain as upstream lists it."""

    base_lsn: int
    kind: str
    """`local`, `in-memory`, `replicated`, or `sealed` (the end marker of a sealed chain)."""
    sequencer: NodeId | None = None
    """Replicated segments: the node that appends (the partition's leader)."""
    replication: int = 1
    """Replicated segments: copies an append needs before it is acknowledged."""
    nodeset: tuple[int, ...] = ()
    """Replicated segments: the nodes that store the records (none when the log lives outside them)."""


def encode(document: Mapping[str, object]) -> bytes:
    """A document as `GetMetadata`'s `encoded` bytes."""
    return bytes([JSON_CODEC]) + json.dumps(document, separators=(",", ":")).encode()


def nodes_configuration(
    *, version: int, cluster_name: str, fingerprint: int, nodes: Iterable[Node], metadata_members: bool
) -> dict[str, object]:
    """`NodesConfiguration`; `metadata_members`: the nodes themselves hold the metadata (one node)."""
    listed = sorted(nodes, key=lambda n: n.node_id.id)
    metadata_state = "member" if metadata_members else "standby"
    return {
        "version": version,
        "cluster_name": cluster_name,
        "cluster_fingerprint": fingerprint,
        "nodes": [
            [
                node.node_id.id,
                {
                    "Node": {
                        "name": node.name,
                        "current_generation": [node.node_id.id, node.node_id.generation],
                        "address": node.address,
                        "roles": list(node.roles),
                        "log_server_config": {"storage_state": "provisioning"},
                        "metadata_server_config": {"metadata_server_state": metadata_state},
                        "worker_config": {"worker_state": "active"},
                    }
                },
            ]
            for node in listed
        ],
        "name_lookup": {node.name: node.node_id.id for node in listed},
    }


def partition_table(*, version: int, num_partitions: int, replication: int) -> dict[str, object]:
    """`PartitionTable`: equal key ranges (`ids.partition_key_range`), log id = partition id."""
    partitions = []
    for partition in range(num_partitions):
        start, end = partition_key_range(partition, num_partitions)
        partitions.append(
            [partition, {"log_id": partition, "key_range": {"start": start, "end": end}, "cf_name": None}]
        )
    return {
        "version": version,
        "num_partitions": num_partitions,
        "partitions": partitions,
        "replication": {"limit": replication},
    }


def logs(
    *, version: int, chains: Mapping[int, Sequence[LogSegment]], replication: int | None
) -> dict[str, object]:
    """`Logs`: every log's chain; `replication` None means the logs are local (one node's RocksDB)."""
    provider: object = (
        "local"
        if replication is None
        else {"replicated": {"replication_property": str(replication), "target_nodeset_size": 0}}
    )
    return {
        "version": version,
        "logs": [
            [log_id, {"chain": [_segment(log_id, index, s) for index, s in enumerate(chains[log_id])]}]
            for log_id in sorted(chains)
        ],
        "config": {"default_provider": provider},
        "modified_at": None,
    }


def _segment(log_id: int, index: int, segment: LogSegment) -> list[object]:
    params = ""
    if segment.kind == "replicated":
        sequencer = segment.sequencer or NodeId(id=0, generation=0)  # upstream's INVALID id
        params = json.dumps(
            {
                "loglet_id": (log_id << 32) | index,  # upstream's LogletId: log id, then segment index
                "sequencer": str(sequencer),
                "replication": {"node": segment.replication},
                "nodeset": list(segment.nodeset),
            },
            separators=(",", ":"),
        )
    elif segment.kind == SEALED:
        params = json.dumps({"sealed_at": 0, "tail_ts": None}, separators=(",", ":"))
    return [segment.base_lsn, {"kind": segment.kind, "params": params, "index": index, "created_at": None}]
