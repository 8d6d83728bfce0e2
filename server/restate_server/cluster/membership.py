"""Node membership: each node announces itself under a lease; a node is live while its key exists.

A node writes `nodes/<name>` (its addresses) attached to a lease it keeps alive a few times per TTL.
If the process dies, or loses etcd for longer than the TTL, the lease expires, the key disappears, and
the controller moves its partitions. A node that notices its own lease expired (a long pause, a network
cut) tells its owner at once, so it stops leading before anyone else would let it, then joins again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass

from restate_server.metadata.api import ABSENT, LeasedStore, PreconditionFailed

log = logging.getLogger(__name__)

NODES_PREFIX = "nodes/"
LEASE_TTL = (
    3  # seconds: a dead node's partitions move after at most this long (plus the controller's reaction)
)
JOIN_WAIT = 4 * LEASE_TTL  # seconds a restarted node waits for its previous incarnation's key to expire
KEEPALIVE_EVERY = 0.75  # seconds between renewals: several renewals per TTL survive a slow etcd request


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """What other nodes (and the CLI tools) need to reach a node."""

    name: str
    address: str
    """The advertised node-port URL (`advertised-address`): gRPC and `/metrics`."""
    ingress: str
    admin: str
    started_at: int
    """Milliseconds since the epoch when this process started (tells a restarted node apart)."""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> NodeInfo:
        return cls(**json.loads(data))


class Membership:
    """Keeps this node's key alive; `lease` is also what the controller election hangs on."""

    def __init__(self, store: LeasedStore, info: NodeInfo, *, on_lost: Callable[[], None]) -> None:
        self.store = store
        self.info = info
        self.lease: int | None = None
        self._on_lost = on_lost

    async def join(self) -> None:
        """Register; waits out the key of a previous incarnation of this node (SIGKILLed, lease pending)."""
        deadline = time.monotonic() + JOIN_WAIT
        lease = await self.store.grant_lease(LEASE_TTL)
        while True:
            try:
                await self.store.put(
                    _key(self.info.name), self.info.encode(), expected_version=ABSENT, lease=lease
                )
                break
            except PreconditionFailed:
                if time.monotonic() > deadline:
                    await self.store.revoke_lease(lease)
                    raise RuntimeError(
                        f"another node named {self.info.name!r} is alive in this cluster; node names must be unique"
                    ) from None
                if not await self.store.keep_alive(lease):
                    lease = await self.store.grant_lease(LEASE_TTL)
                await asyncio.sleep(KEEPALIVE_EVERY)
        self.lease = lease
        log.info("node %s joined the cluster (lease %x)", self.info.name, lease)

    async def run(self) -> None:
        """Renew the lease forever; on losing it, tell the owner and join again."""
        while True:
            await asyncio.sleep(KEEPALIVE_EVERY)
            assert self.lease is not None
            try:
                alive = await self.store.keep_alive(self.lease)
            except Exception as exc:  # etcd unreachable: keep trying until the lease runs out
                log.warning("could not renew the node lease: %s", exc)
                continue
            if not alive:
                log.error(
                    "node %s lost its lease: stepping down everywhere, then joining again", self.info.name
                )
                self._on_lost()
                await self.join()

    async def leave(self) -> None:
        if self.lease is not None:
            await self.store.revoke_lease(self.lease)
            self.lease = None


def _key(name: str) -> str:
    return NODES_PREFIX + name


async def live_nodes(store: LeasedStore) -> AsyncIterator[dict[str, NodeInfo]]:
    """The live nodes, first as they are, then after every change."""
    nodes: dict[str, NodeInfo] = {}
    async for change in store.watch(NODES_PREFIX, prefix=True):
        name = change.key[len(NODES_PREFIX) :]
        if change.value is None:
            nodes.pop(name, None)
        else:
            nodes[name] = NodeInfo.decode(change.value.value)
        yield dict(nodes)
