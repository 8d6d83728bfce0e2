"""The real `restatectl` 1.7.12 against our nodes: `status`, `nodes list`, `partitions list`, `logs list`
and `snapshots create`, on a single node and on a 3-node cluster on the session's etcd.

`TEST_RESTATECTL` names the binary (CI installs the npm package `@restatedev/restatectl`). Assertions
read the tables it prints: node names and ids, which node leads each partition, the logs' kinds and
sequencers, and the snapshots it reports against the files that appear in the snapshot destination.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_harness import NUM_PARTITIONS, Cluster, make_cluster
from etcd_cluster import EtcdCluster
from harness import Server, wait_until

CTL = os.environ.get("TEST_RESTATECTL") or shutil.which("restatectl")
pytestmark = pytest.mark.skipif(CTL is None, reason="restatectl is not installed (set TEST_RESTATECTL)")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
SNAPSHOT_CREATED = re.compile(
    r"Snapshot created for partition (\d+): (snap_\w+) \(log (\d+) @ LSN >= (\d+)\)"
)


def restatectl(node: Server, *args: str) -> str:
    """Run restatectl against `node`'s node port; exit code 0 is asserted, stdout+stderr returned."""
    assert CTL is not None
    done = subprocess.run(
        [CTL, "--address", f"http://127.0.0.1:{node.node_port}/", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "CI": "true"},
        check=False,
    )
    output = _ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"restatectl {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def rows(output: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the table whose header begins with `first_column`, as {column: cell}.

    Cells are cut at the header's column starts (comfy-table's compact style aligns cells left under
    their headers), since a cell may hold spaces (`1m 40s`, `admin | worker`) or be empty.
    """
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_column])
    header = lines[start]
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+", header)]
    table = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        bounds = [*(begin for _, begin in columns[1:]), len(line)]
        table.append(
            {name: line[begin:end].strip() for (name, begin), end in zip(columns, bounds, strict=True)}
        )
    return table


def partitions(output: str) -> dict[int, list[dict[str, str]]]:
    """`partitions list`: the processors of each partition."""
    found: dict[int, list[dict[str, str]]] = {}
    for row in rows(output, "ID"):
        found.setdefault(int(row["ID"]), []).append(row)
    return found


def plain(node_id: str) -> str:
    """`N2:3` (generational) as `N2`."""
    return node_id.split(":")[0]


# ---- a single node


def test_single_node_answers_every_command(server: Server) -> None:
    nodes = rows(restatectl(server, "nodes", "list"), "NODE")
    assert nodes == [
        {
            "NODE": "N1",
            "GEN": "1",
            "NAME": "n1",
            "ADDRESS": f"http://127.0.0.1:{server.node_port}/",
            "ROLES": "admin | http-ingress | metadata-server | worker",
        }
    ]

    listed = partitions(restatectl(server, "partitions", "list"))
    assert sorted(listed) == list(range(8))
    for processors in listed.values():
        assert [(p["NODE"], p["MODE"], p["STATUS"], p["EPOCH"]) for p in processors] == [
            ("N1:1", "Leader", "Active", "e1")
        ]
        assert int(processors[0]["APPLIED"]) >= 1  # the leader's announcement is applied

    logs = rows(restatectl(server, "logs", "list"), "L-ID")
    assert [(r["L-ID"], r["SEGMENTS"], r["FROM"], r["KIND"]) for r in logs] == [
        (str(p), "1", "1", "local") for p in range(8)
    ]

    status = rows(restatectl(server, "status"), "NODE-ID")
    assert [(r["NODE-ID"], r["NAME"], r["METADATA"], r["LEADER"], r["FOLLOWER"]) for r in status] == [
        ("N1:1", "n1", "Local", "8", "0")  # the metadata is the node's own
    ]

    # no snapshot destination: upstream's error, reported per partition, and exit code 0
    refused = restatectl(server, "snapshots", "create", "0")
    assert "kind: RepositoryNotConfigured" in refused
    assert httpx.get(f"{server.admin}/cluster-health").json()["metadata_cluster_health"] == {"members": [1]}

    server.stop()
    server.start()  # a restart is a new generation of the same node id, leading at a new epoch
    assert rows(restatectl(server, "nodes", "list"), "NODE")[0]["GEN"] == "2"
    after = partitions(restatectl(server, "partitions", "list"))
    assert {(p[0]["NODE"], p[0]["MODE"], p[0]["EPOCH"]) for p in after.values()} == {("N1:2", "Leader", "e2")}


def test_single_node_snapshots_create(tmp_path: Path) -> None:
    destination = tmp_path / "snapshots"
    node = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={
            "RESTATE_DEFAULT_NUM_PARTITIONS": "4",
            "RESTATE_WORKER__SNAPSHOTS__DESTINATION": f"file://{destination}",
        },
    )
    node.start()
    try:
        created = SNAPSHOT_CREATED.findall(restatectl(node, "snapshots", "create"))
        assert sorted(int(p) for p, *_ in created) == [0, 1, 2, 3]
        for partition, snapshot_id, log_id, lsn in created:
            assert log_id == partition
            latest = json.loads((destination / partition / "latest.json").read_text())
            assert (latest["snapshot_id"], latest["applied_lsn"]) == (snapshot_id, int(lsn))

        listed = partitions(restatectl(node, "partitions", "list"))
        assert {str(p): procs[0]["ARCHIVED"] for p, procs in listed.items()} == {
            p: lsn for p, _, _, lsn in created
        }

        # --trim-log: the store is made durable, the log trimmed to the snapshot, and a restart replays
        # from there
        trimmed = SNAPSHOT_CREATED.findall(restatectl(node, "snapshots", "create", "2", "--trim-log"))
        assert [p for p, *_ in trimmed] == ["2"]
        wait_until(lambda: "partition 2: log trimmed to LSN" in node.log_path.read_text(), timeout=10)
        node.stop()
        node.start()
        assert partitions(restatectl(node, "partitions", "list"))[2][0]["MODE"] == "Leader"
    finally:
        node.stop()


# ---- a cluster of three


@pytest.fixture
def snapshot_cluster(
    etcd_cluster: EtcdCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    c = make_cluster(
        etcd_cluster, tmp_path, RESTATE_WORKER__SNAPSHOTS__DESTINATION=f"file://{tmp_path / 'snapshots'}"
    )
    c.start()
    yield c
    c.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for node in c.nodes:
            print(f"--- {node.node_name}\n{node.log_path.read_text()[-8000:]}")


def test_cluster_answers_every_command(snapshot_cluster: Cluster, tmp_path: Path) -> None:
    cluster = snapshot_cluster
    first, second, third = cluster.nodes
    nodes = {r["NAME"]: r for r in rows(restatectl(first, "nodes", "list"), "NODE")}
    assert sorted(nodes) == ["n1", "n2", "n3"]
    assert sorted(r["NODE"] for r in nodes.values()) == ["N1", "N2", "N3"]
    for node in cluster.nodes:
        assert nodes[node.node_name]["ADDRESS"] == f"http://127.0.0.1:{node.node_port}/"
        assert nodes[node.node_name]["ROLES"] == "admin | http-ingress | worker"
    ids = {name: r["NODE"] for name, r in nodes.items()}

    # any node answers; each partition has two processors (replication 2), the table's leader leading
    wait_until(lambda: _settled(cluster, second, ids), timeout=30)
    table = cluster.table()
    listed = partitions(restatectl(second, "partitions", "list"))
    assert sorted(listed) == list(range(NUM_PARTITIONS))
    for partition, processors in listed.items():
        placement = table.partitions[partition]
        assert sorted(plain(p["NODE"]) for p in processors) == sorted(ids[r] for r in placement.replicas)
        assert [plain(p["NODE"]) for p in processors if p["MODE"] == "Leader"] == [ids[placement.leader]]
        assert {p["EPOCH"] for p in processors} == {f"e{placement.epoch}"}

    logs = rows(restatectl(third, "logs", "list"), "L-ID")
    assert [r["L-ID"] for r in logs] == [str(p) for p in range(NUM_PARTITIONS)]
    for r in logs:
        assert (r["SEGMENTS"], r["FROM"], r["KIND"]) == ("1", "1", "replicated")
        assert r["REPLICATION"] == "{node: 2}"  # an etcd append waits for a majority of its 3 members
        assert plain(r["SEQUENCER"]) == ids[table.partitions[int(r["L-ID"])].leader]

    status = rows(restatectl(first, "status"), "NODE-ID")
    assert sorted(r["NAME"] for r in status) == ["n1", "n2", "n3"]
    assert sum(int(r["LEADER"]) for r in status) == NUM_PARTITIONS
    assert sum(int(r["FOLLOWER"]) for r in status) == NUM_PARTITIONS
    assert sum(int(r["SEQUENCER"]) for r in status) == NUM_PARTITIONS
    assert httpx.get(f"{first.admin}/cluster-health").json()["metadata_cluster_health"] is None

    # snapshots are taken by each partition's leader, whichever node restatectl asked
    created = SNAPSHOT_CREATED.findall(restatectl(first, "snapshots", "create"))
    assert sorted(int(p) for p, *_ in created) == list(range(NUM_PARTITIONS))
    for partition, snapshot_id, _, lsn in created:
        directory = tmp_path / "snapshots" / partition
        latest = json.loads((directory / "latest.json").read_text())
        assert (latest["snapshot_id"], latest["applied_lsn"]) == (snapshot_id, int(lsn))
        metadata = json.loads(next(directory.glob(f"*{snapshot_id}/metadata.json")).read_text())
        assert metadata["node_name"] == table.partitions[int(partition)].leader

    # a stopped node stays in the nodes configuration, reported dead
    third.stop()
    wait_until(lambda: ids["n3"] in _dead(restatectl(first, "partitions", "list")), timeout=30)
    assert len(rows(restatectl(first, "nodes", "list"), "NODE")) == 3


def _settled(cluster: Cluster, node: Server, ids: dict[str, str]) -> bool:
    """Every partition's table leader reports itself leading (announced and applied)."""
    table = cluster.table()
    listed = partitions(restatectl(node, "partitions", "list"))
    return len(listed) == NUM_PARTITIONS and all(
        any(plain(p["NODE"]) == ids[table.partitions[i].leader] and p["MODE"] == "Leader" for p in procs)
        for i, procs in listed.items()
    )


def _dead(output: str) -> list[str]:
    """The node ids under `partitions list`'s dead nodes table."""
    if "Dead nodes" not in output:
        return []
    return [r["NODE"] for r in rows(output[output.index("Dead nodes") :], "NODE")]
