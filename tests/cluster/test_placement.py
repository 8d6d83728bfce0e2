"""The controller's placement rules, as a pure function: (table, live nodes) -> next table."""

from __future__ import annotations

from collections import Counter

from restate_server.cluster.placement import PartitionTable, Placement, place


def _spread_fully(table: PartitionTable, live: list[str]) -> PartitionTable:
    for _ in range(100):
        nxt = place(table, live)
        if nxt == table:
            return table
        table = nxt
    raise AssertionError("placement does not converge")


def test_provisioned_table_is_placed_on_live_nodes_with_replication() -> None:
    table = place(PartitionTable.provision(8, 2), ["n1", "n2", "n3"], spread=False)
    assert all(len(p.replicas) == 2 for p in table.partitions)
    assert all(p.leader in p.replicas and p.epoch == 1 for p in table.partitions)
    load = Counter(r for p in table.partitions for r in p.replicas)
    assert max(load.values()) - min(load.values()) <= 1
    assert place(table, ["n1", "n2", "n3"], spread=False) == table  # stable


def test_replication_is_capped_by_live_nodes_and_filled_when_nodes_join() -> None:
    alone = place(PartitionTable.provision(4, 2), ["n1"])
    assert all(p.replicas == ("n1",) and p.leader == "n1" for p in alone.partitions)
    joined = place(alone, ["n1", "n2"], spread=False)
    assert all(p.replicas == ("n1", "n2") for p in joined.partitions)
    assert all(p.leader == "n1" and p.epoch == 1 for p in joined.partitions)  # no needless failover


def test_dead_leader_is_replaced_by_a_live_replica_with_a_higher_epoch() -> None:
    table = _spread_fully(place(PartitionTable.provision(6, 2), ["n1", "n2", "n3"]), ["n1", "n2", "n3"])
    after = place(table, ["n2", "n3"], spread=False)
    for before, now in zip(table.partitions, after.partitions, strict=True):
        assert "n1" not in now.replicas
        assert len(now.replicas) == 2
        if before.leader == "n1":
            assert now.leader in before.replicas
            assert now.leader != "n1"
            assert now.epoch == before.epoch + 1
        else:
            assert (now.leader, now.epoch) == (before.leader, before.epoch)


def test_leadership_spreads_one_move_at_a_time_and_settles() -> None:
    table = place(place(PartitionTable.provision(9, 3), ["n1"]), ["n1", "n2", "n3"], spread=False)
    assert Counter(p.leader for p in table.partitions) == {"n1": 9}
    moved = place(table, ["n1", "n2", "n3"])
    changed = [i for i, (a, b) in enumerate(zip(table.partitions, moved.partitions, strict=True)) if a != b]
    assert len(changed) == 1
    assert moved.partitions[changed[0]].epoch == table.partitions[changed[0]].epoch + 1
    settled = _spread_fully(moved, ["n1", "n2", "n3"])
    assert sorted(Counter(p.leader for p in settled.partitions).values()) == [3, 3, 3]


def test_no_live_node_changes_nothing_and_the_table_round_trips() -> None:
    table = PartitionTable(
        num_partitions=2,
        replication=2,
        partitions=(Placement(replicas=("a", "b"), leader="a", epoch=3), Placement()),
    )
    assert place(table, []) == table
    assert PartitionTable.decode(table.encode()) == table
    assert table.led_by("a") == [0]
    assert table.replicated_by("b") == [0]


def test_a_node_that_joins_gets_follower_replicas_one_at_a_time() -> None:
    two = _spread_fully(place(PartitionTable.provision(6, 2), ["n1", "n2"]), ["n1", "n2"])
    assert all(set(p.replicas) == {"n1", "n2"} for p in two.partitions)
    moved = place(two, ["n1", "n2", "n3"])
    gained = [p for p in moved.partitions if "n3" in p.replicas]
    assert len(gained) == 1
    assert gained[0].leader != "n3"  # a new replica follows first
    settled = _spread_fully(moved, ["n1", "n2", "n3"])
    load = Counter(r for p in settled.partitions for r in p.replicas)
    assert sorted(load.values()) == [4, 4, 4]
    assert sorted(Counter(p.leader for p in settled.partitions).values()) == [2, 2, 2]
