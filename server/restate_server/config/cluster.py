"""Cluster options: where the metadata store and the log live, and how partitions are replicated.

Upstream's keys (`metadata-client.*`, `bifrost.default-provider`, `default-replication`,
`auto-provision`; `roles` is accepted and reported unused: every node runs every role). Without `metadata-client.type = "etcd"` the node runs alone on its
embedded stores, exactly as a single node always did; with it, every node of the cluster points at the
same etcd, which holds the metadata and every partition's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from restate_server.config.layers import Reader

USED_KEYS = (
    "metadata-client.type",
    "metadata-client.addresses",
    "bifrost.default-provider",
    "default-replication",
    "auto-provision",
)

MetadataClientType = Literal["embedded", "etcd"]
LogProviderName = Literal["local", "etcd"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterOptions:
    """How this node finds the cluster (upstream `CommonOptions` and `MetadataClientOptions`)."""

    metadata_client: MetadataClientType = "embedded"
    """`metadata-client.type`: `embedded` (this node's own RocksDB; a single node; upstream calls its
    own embedded store `replicated`, accepted as an alias) or `etcd` (a cluster)."""
    metadata_addresses: tuple[str, ...] = ()
    """`metadata-client.addresses`: the etcd endpoints, e.g. `["http://h1:2379","http://h2:2379"]`."""
    log_provider: LogProviderName = "local"
    """`bifrost.default-provider`: `local` (RocksDB, single node) or `etcd` (`replicated` is accepted as
    its alias, so upstream's cluster configuration works; on the embedded metadata store, upstream's
    default, it is the local log); defaults to `etcd` when the metadata client is etcd."""
    default_replication: int = 1
    """`default-replication`: how many nodes hold each partition (the leader plus warm followers)."""
    auto_provision: bool = True
    """`auto-provision`: the first node to start writes the initial partition table (a compare-and-set,
    so every node may have it on)."""

    @property
    def clustered(self) -> bool:
        """True when the node is one of a cluster (metadata and log in etcd)."""
        return self.metadata_client == "etcd"


def read(get: Reader) -> ClusterOptions:
    client = get.choice("metadata-client.type", "embedded", ("embedded", "replicated", "etcd"))
    metadata_client: MetadataClientType = "etcd" if client == "etcd" else "embedded"
    addresses = get.string_list("metadata-client.addresses")
    default_provider = "etcd" if metadata_client == "etcd" else "local"
    provider = get.choice("bifrost.default-provider", default_provider, ("local", "replicated", "etcd"))
    # `replicated` is upstream's default: replicated over the cluster's nodes, which for a node on its
    # embedded metadata store is this node alone, i.e. the local log (so upstream's dump loads as is)
    replicated_alone = provider == "replicated" and metadata_client != "etcd"
    log_provider: LogProviderName = "local" if provider == "local" or replicated_alone else "etcd"
    if metadata_client == "etcd" and not addresses:
        raise get.error("metadata-client.addresses", "an etcd metadata client needs at least one address")
    if log_provider == "etcd" and metadata_client != "etcd":
        raise get.error("bifrost.default-provider", 'the etcd log needs `metadata-client.type = "etcd"`')
    return ClusterOptions(
        metadata_client=metadata_client,
        metadata_addresses=tuple(addresses),
        log_provider=log_provider,
        default_replication=get.replication("default-replication", 1),
        auto_provision=get.boolean("auto-provision", True),
    )


def dump(cluster: ClusterOptions) -> dict[str, object]:
    """Top-level keys and the `[metadata-client]` / `[bifrost]` tables for `--dump-config`."""
    out: dict[str, object] = {
        "default-replication": cluster.default_replication,
        "auto-provision": cluster.auto_provision,
        "bifrost": {"default-provider": cluster.log_provider},
    }
    client: dict[str, object] = {"type": "etcd" if cluster.clustered else "replicated"}
    if cluster.metadata_addresses:
        client["addresses"] = list(cluster.metadata_addresses)
    out["metadata-client"] = client
    return out
