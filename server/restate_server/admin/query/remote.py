"""`/query` across a cluster: a node scans the partitions it leads for other nodes, as Arrow IPC.

The node answering a query reads its own led partitions from its store and asks every other live
node for the rows of the partitions they lead (`cluster.rpc`'s `Scan`), then concatenates them: each
partition is read once, from its leader, whose store is the most recent.
"""

from __future__ import annotations

import pyarrow as pa

from restate_server.admin.query import catalog, tables


def scan_local(
    sources: tables.Sources, table: str, only: tables.Only, columns: frozenset[str] | None
) -> bytes:
    """This node's rows of one table as an Arrow IPC stream (blocking: call it from a thread)."""
    data = catalog.TABLES[table].materialise(sources, only, columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()
