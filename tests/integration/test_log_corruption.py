"""A damaged log is detected at start-up and the server refuses to start, instead of losing records."""

from __future__ import annotations

import os
import struct
import subprocess

from harness import PYTHON, Server
from restate_server.rocksdb import Database, new_batch

SENDS = 300


def _start_expecting_failure(server: Server, timeout: float = 60) -> str:
    """Start the server on its data and return its log once it exited (it must not come up)."""
    before = server.log_path.read_text() if server.log_path.exists() else ""
    env = {
        **os.environ,
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{server.ingress_port}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{server.admin_port}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{server.node_port}",
        "RESTATE_DEFAULT_NUM_PARTITIONS": "8",
        "RESTATE_LOG_FILTER": "info",
    }
    with server.log_path.open("ab") as log:
        proc = subprocess.run(
            [PYTHON, "-m", "restate_server", "--base-dir", str(server.base_dir), "--node-name", "n1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    assert proc.returncode != 0
    return server.log_path.read_text()[len(before) :]


def _send_many(server: Server) -> None:
    for n in range(SENDS):
        resp = server.call("Durable/record/send", f"s{n}")
        assert resp.status_code == 202, resp.text


def test_corrupt_log_wal_refuses_to_start(deployed: Server) -> None:
    _send_many(deployed)
    deployed.kill()
    log_dir = deployed.base_dir / "n1" / "log"
    wal = max(log_dir.glob("*.log"), key=lambda p: p.stat().st_size)
    data = bytearray(wal.read_bytes())
    assert len(data) > 10_000  # the acknowledged records are in this WAL
    data[len(data) // 2] ^= 0xFF
    wal.write_bytes(bytes(data))
    output = _start_expecting_failure(deployed)
    assert "refusing to start" in output
    assert str(log_dir) in output
    assert "Corruption" in output


def test_log_that_does_not_reach_the_store_refuses_to_start(deployed: Server) -> None:
    _send_many(deployed)
    deployed.stop()  # clean stop: the store has applied (and flushed) every record
    # drop the newest records of partition 0's log, as a lost write would
    db = Database(deployed.base_dir / "n1" / "log")
    start, end = struct.pack(">cHQ", b"L", 0, 0), struct.pack(">cHQ", b"L", 0, 2**64 - 1)
    lsns = [struct.unpack(">cHQ", key)[2] for key, _ in db.scan(start, end)]
    assert len(lsns) > 3
    batch = new_batch()
    batch.delete_range(struct.pack(">cHQ", b"L", 0, lsns[-3]), end)
    db.write(batch, sync=True)
    db.close()
    output = _start_expecting_failure(deployed)
    assert "partition 0: the partition store applied up to LSN" in output
    assert f"holds LSNs {lsns[0]}..{lsns[-4]} (trim point {lsns[0] - 1}" in output
    assert str(deployed.base_dir / "n1" / "log") in output
