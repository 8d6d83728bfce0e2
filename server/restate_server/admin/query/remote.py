"""`/query` across a cluster: a node scans the partitions it leads for other nodes, as Arrow IPC.

The node answering a query reads its own led partitions from its store and asks every other live
node for the rows of the partitions they lead (`cluster.rpc`'s `Scan`), then concatenates them: each
partition is read once, from its leader, whose store is the most recent.
"""

from __future__ import annotations

import pyarrow as pa

from restate_server.admin.query import catalog, scan, tables


def scan_local(sources: tables.Sources, table: str, read: scan.Scan) -> bytes:
    """This node's rows of one table as an Arrow IPC stream (blocking: call it from a thread)."""
    found = catalog.TABLES[table]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, found.schema) as writer:
        for batch in found.batches(sources, read):
            writer.write_batch(batch)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()
