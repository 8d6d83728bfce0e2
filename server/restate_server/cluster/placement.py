"""The partition table and the pure placement rules the controller applies to it.

The table is one JSON document in the metadata store (`partition-table`), written with compare-and-set
by the controller only. `place` is a pure function from (table, live nodes) to the next table, so the
rules are unit-tested without a cluster: same inputs, same table.

Rules, in order, per partition:
1. keep the replicas that are alive; fill up to `replication` (at most the number of live nodes)
   with the live nodes holding the fewest replicas (ties by name);
2. keep a live leader that is still a replica; otherwise pick, among the replicas that were already
   following, the one leading the fewest partitions, and bump the epoch (the new leader fences the
   old one through the log);
3. even out replicas: a node holding two or more replicas fewer than the busiest (one that joined)
   takes over one follower replica per call;
4. spread leadership: a node that leads more than its fair share hands one partition per call to a
   replica that leads less than its share (one move at a time, so failovers never pile up).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

TABLE_KEY = "partition-table"


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Who holds one partition: its replicas, the leader among them, and the leader's epoch."""

    replicas: tuple[str, ...] = ()
    leader: str | None = None
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionTable:
    num_partitions: int
    replication: int
    partitions: tuple[Placement, ...]

    @classmethod
    def provision(cls, num_partitions: int, replication: int) -> PartitionTable:
        """A new cluster's table: nothing placed yet (the controller places once nodes are live)."""
        return cls(
            num_partitions=num_partitions,
            replication=replication,
            partitions=tuple(Placement() for _ in range(num_partitions)),
        )

    def encode(self) -> bytes:
        return json.dumps(
            {
                "num_partitions": self.num_partitions,
                "replication": self.replication,
                "partitions": [
                    {"replicas": list(p.replicas), "leader": p.leader, "epoch": p.epoch}
                    for p in self.partitions
                ],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> PartitionTable:
        raw = json.loads(data)
        return cls(
            num_partitions=int(raw["num_partitions"]),
            replication=int(raw["replication"]),
            partitions=tuple(
                Placement(replicas=tuple(p["replicas"]), leader=p["leader"], epoch=int(p["epoch"]))
                for p in raw["partitions"]
            ),
        )

    def led_by(self, node: str) -> list[int]:
        return [i for i, p in enumerate(self.partitions) if p.leader == node]

    def replicated_by(self, node: str) -> list[int]:
        return [i for i, p in enumerate(self.partitions) if node in p.replicas]


def place(table: PartitionTable, live: Iterable[str], *, spread: bool = True) -> PartitionTable:
    """The next table for these live nodes (the same table when nothing needs to change).

    `spread=False` skips rules 3 and 4 (the controller paces moves; failover is never paced).
    """
    alive = sorted(set(live))
    if not alive:
        return table
    want = min(table.replication, len(alive))
    load: Counter[str] = Counter()
    for p in table.partitions:
        load.update(r for r in p.replicas if r in alive)
    placed = []
    followers = []  # per partition, the live replicas that were already following it
    for p in table.partitions:
        replicas = [r for r in p.replicas if r in alive]
        followers.append(tuple(replicas))
        for candidate in sorted(alive, key=lambda n: (load[n], n)):
            if len(replicas) >= want:
                break
            if candidate not in replicas:
                replicas.append(candidate)
                load[candidate] += 1
        placed.append(replace(p, replicas=tuple(replicas)))
    leading = Counter(p.leader for p in placed if p.leader in p.replicas)
    for i, p in enumerate(placed):
        if p.leader is not None and p.leader in p.replicas:
            continue
        # a replica that was already following has the store closest to the log's tail
        leader = min(followers[i] or p.replicas, key=lambda n: (leading[n], n))
        leading[leader] += 1
        placed[i] = replace(p, leader=leader, epoch=p.epoch + 1)
    if spread:
        placed = _spread_one(_rebalance_one(placed, alive), alive)
    return replace(table, partitions=tuple(placed))


def _rebalance_one(placed: list[Placement], alive: list[str]) -> list[Placement]:
    """Hand one follower replica from the most loaded node to the least loaded (a node that joined).

    Only a follower moves (leadership is `_spread_one`'s business); the new replica catches up from
    the latest snapshot and the log before the table makes it a leader.
    """
    load = Counter({n: 0 for n in alive})
    load.update(r for p in placed for r in p.replicas)
    lightest = min(alive, key=lambda n: (load[n], n))
    heaviest = max(alive, key=lambda n: (load[n], n))
    if load[heaviest] - load[lightest] <= 1:
        return placed
    for i, p in enumerate(placed):
        if heaviest in p.replicas and p.leader != heaviest and lightest not in p.replicas:
            replicas = tuple(lightest if r == heaviest else r for r in p.replicas)
            placed[i] = replace(p, replicas=replicas)
            return placed
    return placed


def _spread_one(placed: list[Placement], alive: list[str]) -> list[Placement]:
    """Move one leadership from the busiest leader to a less busy replica, if that evens things out."""
    leading = Counter({n: 0 for n in alive})
    leading.update(p.leader for p in placed if p.leader is not None)
    fair = -(-len(placed) // len(alive))  # ceil
    busiest = max(alive, key=lambda n: (leading[n], n))
    if leading[busiest] <= fair:
        return placed
    for i, p in enumerate(placed):
        if p.leader != busiest:
            continue
        # only a move that leaves the taker below the giver evens things out (no ping-pong)
        takers = [r for r in p.replicas if r != busiest and leading[r] + 1 < leading[busiest]]
        if takers:
            taker = min(takers, key=lambda n: (leading[n], n))
            placed[i] = replace(p, leader=taker, epoch=p.epoch + 1)
            return placed
    return placed
