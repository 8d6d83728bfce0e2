"""Node ids and generations, as upstream's nodes configuration gives them to `restatectl`.

Nodes here are known by name; upstream's tools know them by a plain id (`N1`) and a generation that
grows with every restart (`N1:3`). Each node registers at start: the first time under the next free
id, later again under its own id with the next generation, its advertised address and its roles. The
registry is one JSON document in the metadata store (`NODES_KEY`), changed by compare-and-set, so
nodes starting together never share an id; its metadata version is the nodes configuration's version.
Entries are never removed: a node that left the cluster stays listed (and reported dead) as upstream's
do until an operator removes them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from restate_server.cluster.ctl.documents import Node, NodeId
from restate_server.metadata.api import ABSENT, MetadataStore, PreconditionFailed

NODES_KEY = "nodes-config"
"""Not under `nodes/`: that prefix holds the leased liveness keys (`cluster.membership`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodesConfig:
    version: int
    """The document's metadata version (0 before any node registered)."""
    fingerprint: int
    """A random non-zero number fixed when the first node registered (upstream's cluster fingerprint)."""
    nodes: tuple[Node, ...]

    def by_name(self, name: str) -> Node | None:
        return next((node for node in self.nodes if node.name == name), None)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "nodes": [
                    {
                        "id": n.node_id.id,
                        "generation": n.node_id.generation,
                        "name": n.name,
                        "address": n.address,
                        "roles": list(n.roles),
                    }
                    for n in self.nodes
                ],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, version: int, data: bytes) -> NodesConfig:
        raw = json.loads(data)
        return cls(
            version=version,
            fingerprint=int(raw["fingerprint"]),
            nodes=tuple(
                Node(
                    node_id=NodeId(id=int(n["id"]), generation=int(n["generation"])),
                    name=str(n["name"]),
                    address=str(n["address"]),
                    roles=tuple(n["roles"]),
                )
                for n in raw["nodes"]
            ),
        )

    def registering(self, name: str, address: str, roles: tuple[str, ...]) -> tuple[NodesConfig, Node]:
        """This document with `name` registered (a new generation if it was known), and its entry."""
        known = self.by_name(name)
        if known is None:
            node_id = NodeId(id=max((n.node_id.id for n in self.nodes), default=0) + 1, generation=1)
        else:
            node_id = NodeId(id=known.node_id.id, generation=known.node_id.generation + 1)
        node = Node(node_id=node_id, name=name, address=address, roles=roles)
        others = tuple(n for n in self.nodes if n.name != name)
        return NodesConfig(version=self.version, fingerprint=self.fingerprint, nodes=(*others, node)), node


def _empty() -> NodesConfig:
    return NodesConfig(version=ABSENT, fingerprint=secrets.randbits(63) or 1, nodes=())


async def load(store: MetadataStore) -> NodesConfig:
    """The registry as stored now (empty, at version 0, before the first registration)."""
    stored = await store.get(NODES_KEY)
    return _empty() if stored is None else NodesConfig.decode(stored.version, stored.value)


async def register(store: MetadataStore, *, name: str, address: str, roles: tuple[str, ...]) -> Node:
    """Register this node (start of a new generation); retries when another node registered meanwhile."""
    while True:
        current = await load(store)
        updated, node = current.registering(name, address, roles)
        try:
            await store.put(NODES_KEY, updated.encode(), expected_version=current.version)
        except PreconditionFailed:
            continue
        return node
