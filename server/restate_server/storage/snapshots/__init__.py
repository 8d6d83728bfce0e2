"""Partition snapshots: one partition's rows at one applied LSN, kept in an object store.

A snapshot lets a new or wiped replica start from the latest snapshot plus the log suffix instead of
the whole log, and so lets the log be trimmed below what every store has applied (upstream: the
partition store's snapshots, `worker.snapshots`). The modules, bottom to top:

- `model`: the metadata document and the errors;
- `rows`: one partition's rows out of the node's RocksDB into an SST file, and back in;
- `repository`: the object-store layout (`obstore`: `s3://`, `file://`), upload, download, retention;
- `transfer`: create a snapshot, find the latest, restore it (the API the node and the cluster call);
- `durability`: the trim rule and the durable (flushed) applied LSN of a replica.
"""
