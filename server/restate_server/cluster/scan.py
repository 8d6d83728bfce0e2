"""`/query` on a cluster node: the rows of partitions led elsewhere, fetched from their leaders.

The query engine runs in a worker thread and calls `ClusterScan` synchronously; the gRPC calls to
every other live node run on the event loop meanwhile. Each node answers only for the partitions it
leads, so every partition's rows come exactly once (a partition whose leader is moving may be
missing from that one answer).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from restate_server.cluster import rpc
from restate_server.cluster.routing import Routing

if TYPE_CHECKING:  # pyarrow and the query engine are loaded by the first query, not at start-up
    import pyarrow as pa

    from restate_server.admin.query import scan as scans

GATHER_TIMEOUT = 90.0  # seconds a query waits for every peer's rows


class ClusterScan:
    def __init__(self, routing: Routing, peers: rpc.Peers, loop: asyncio.AbstractEventLoop) -> None:
        self.routing = routing
        self.peers = peers
        self.loop = loop

    def __call__(self, table: str, read: scans.Scan) -> list[pa.Table]:
        future = asyncio.run_coroutine_threadsafe(self._gather(table, read), self.loop)
        return future.result(GATHER_TIMEOUT)

    async def _gather(self, table: str, read: scans.Scan) -> list[pa.Table]:
        """Asks for the ids and columns only: the other restrictions are safe to leave to the engine."""
        peers = [info.address for name, info in self.routing.nodes.items() if name != self.routing.me]
        answers = await asyncio.gather(
            *(self.peers.scan(address, table, read.ids, read.columns) for address in peers)
        )
        from restate_server.admin.query import remote  # loaded with the query engine

        return [remote.from_ipc(chunk) for chunks in answers for chunk in chunks]
