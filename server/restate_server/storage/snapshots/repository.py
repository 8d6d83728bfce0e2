"""Where snapshots live: the object-store layout, upload, download and retention (through `obstore`).

Layout under the destination (`s3://bucket/prefix` or `file:///path`), one directory per partition:

    <partition>/latest.json                         copy of the newest snapshot's metadata.json
    <partition>/lsn_<applied LSN, 20 digits>-<id>/metadata.json
    <partition>/lsn_<applied LSN, 20 digits>-<id>/data.sst

The data file is uploaded first, then `metadata.json`, then `latest.json`, so whatever `latest.json`
names is complete; a directory without `metadata.json` is an upload that died. Zero-padded LSNs make a
listing sort by LSN. Large files go up in multipart chunks read from disk and come down in chunks
written to disk, so memory stays bounded whatever the partition's size. Every call blocks (callers run
them in a thread): the sync `obstore` calls release the GIL while they wait on the network.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, ObjectStore, S3Store

from restate_server.config.worker import SNAPSHOT_SCHEMES, ObjectStoreOptions
from restate_server.storage.snapshots.model import (
    FORMAT_VERSION,
    SnapshotCorrupted,
    SnapshotError,
    SnapshotMetadata,
    SnapshotMissing,
)
from restate_server.storage.snapshots.rows import ExportedRows

LATEST = "latest.json"
METADATA = "metadata.json"
_PART_BYTES = 5 * 1024 * 1024  # multipart upload part (S3's minimum part size)
_PART_CONCURRENCY = 2  # parts in flight per upload: at most 10 MiB buffered
_DOWNLOAD_CHUNK = 1024 * 1024  # obstore holds about two chunks at a time while streaming a download


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotDirectory:
    """One snapshot directory found by listing a partition."""

    path: str
    applied_lsn: int
    complete: bool
    """True once its metadata.json is there."""


def open_store(destination: str, object_store: ObjectStoreOptions) -> ObjectStore:
    """The object store behind a `worker.snapshots.destination` URL."""
    scheme = urlsplit(destination).scheme
    match scheme:
        case "file":
            return LocalStore.from_url(destination, mkdir=True)
        case "s3" | "s3a":
            config = {
                name: value
                for name, value in (
                    ("region", object_store.aws_region),
                    ("access_key_id", object_store.aws_access_key_id),
                    ("secret_access_key", object_store.aws_secret_access_key),
                    ("session_token", object_store.aws_session_token),
                    ("endpoint", object_store.aws_endpoint_url),
                )
                if value is not None
            }
            # Unset keys come from the AWS_* environment, but only while no client options are passed
            # at all: an empty dict would hide AWS_ALLOW_HTTP.
            allow_http = object_store.aws_allow_http
            client = None if allow_http is None else {"allow_http": allow_http}
            return S3Store.from_url(destination, config=config or None, client_options=client)  # type: ignore[arg-type]
        case _:
            raise SnapshotError(
                f"snapshot destination {destination!r}: unsupported scheme, expected one of "
                + ", ".join(f"{s}://" for s in SNAPSHOT_SCHEMES)
            )


class SnapshotRepository:
    """The snapshots of every partition under one destination."""

    def __init__(self, store: ObjectStore, destination: str) -> None:
        self._store = store
        self.destination = destination

    @classmethod
    def open(cls, destination: str, object_store: ObjectStoreOptions | None = None) -> SnapshotRepository:
        return cls(open_store(destination, object_store or ObjectStoreOptions()), destination)

    def upload(
        self,
        exported: ExportedRows,
        *,
        partition: int,
        created_at: datetime,
        cluster_name: str,
        node_name: str,
    ) -> SnapshotMetadata:
        """Store an exported partition as a new snapshot and make it the latest if it is newer."""
        snapshot_id = "snap_" + uuid.uuid4().hex
        metadata = SnapshotMetadata(
            format_version=FORMAT_VERSION,
            snapshot_id=snapshot_id,
            partition_id=partition,
            applied_lsn=exported.applied_lsn,
            created_at=created_at,
            cluster_name=cluster_name,
            node_name=node_name,
            directory=f"{partition}/lsn_{exported.applied_lsn:020d}-{snapshot_id}",
            data_file=exported.path.name,
            rows=exported.rows,
            size_bytes=exported.size_bytes,
            sha256=exported.sha256,
        )
        obstore.put(
            self._store,
            metadata.data_path(),
            exported.path,
            chunk_size=_PART_BYTES,
            max_concurrency=_PART_CONCURRENCY,
        )
        document = metadata.encode()
        obstore.put(self._store, f"{metadata.directory}/{METADATA}", document)
        current = self.latest(partition)
        # Only the partition's leader snapshots it, so two writers race only across a leadership
        # change; the newer LSN wins either way because a stale leader's export is older.
        if current is None or current.applied_lsn < metadata.applied_lsn:
            obstore.put(self._store, f"{partition}/{LATEST}", document)
        return metadata

    def latest(self, partition: int) -> SnapshotMetadata | None:
        """The newest snapshot of a partition, or None if it has none."""
        try:
            data = obstore.get(self._store, f"{partition}/{LATEST}").bytes()
        except (NotFoundError, FileNotFoundError):
            return None
        metadata = SnapshotMetadata.decode(bytes(data))
        if metadata.partition_id != partition:
            raise SnapshotCorrupted(
                f"{partition}/{LATEST} describes partition {metadata.partition_id}, not {partition}"
            )
        return metadata

    def download(self, metadata: SnapshotMetadata, target: Path) -> None:
        """Fetch a snapshot's data file to `target`, checking its size and checksum."""
        try:
            result = obstore.get(self._store, metadata.data_path())
        except (NotFoundError, FileNotFoundError) as exc:
            raise SnapshotMissing(f"{metadata.data_path()} is gone") from exc
        digest = hashlib.sha256()
        size = 0
        with target.open("wb") as file:
            for chunk in result.stream(min_chunk_size=_DOWNLOAD_CHUNK):
                view = memoryview(chunk)
                digest.update(view)
                file.write(view)
                size += len(view)
        if size != metadata.size_bytes or digest.hexdigest() != metadata.sha256:
            raise SnapshotCorrupted(
                f"snapshot {metadata.snapshot_id} of partition {metadata.partition_id}: the data file has"
                f" {size} bytes (sha256 {digest.hexdigest()}), its metadata says {metadata.size_bytes}"
                f" bytes (sha256 {metadata.sha256})"
            )

    def directories(self, partition: int) -> list[SnapshotDirectory]:
        """The partition's snapshot directories, oldest LSN first."""
        found: dict[str, tuple[int, bool]] = {}
        for chunk in obstore.list(self._store, f"{partition}/"):
            for meta in chunk:
                parts = meta["path"].split("/")
                if len(parts) < 3 or not parts[-2].startswith("lsn_"):
                    continue
                directory = "/".join(parts[:-1])
                lsn = int(parts[-2][len("lsn_") :].split("-", 1)[0])
                _, complete = found.get(directory, (lsn, False))
                found[directory] = (lsn, complete or parts[-1] == METADATA)
        return sorted(
            (SnapshotDirectory(path=p, applied_lsn=lsn, complete=c) for p, (lsn, c) in found.items()),
            key=lambda d: (d.applied_lsn, d.path),
        )

    def retained(self, partition: int, keep: int) -> list[SnapshotDirectory]:
        """The newest `keep` complete snapshots, oldest first."""
        return [d for d in self.directories(partition) if d.complete][-keep:]

    def prune(self, partition: int, keep: int) -> int | None:
        """Keep the newest `keep` complete snapshots, delete everything older.

        Returns the applied LSN of the oldest snapshot kept (the partition's archived LSN: any kept
        snapshot plus the log after this LSN rebuilds the partition), or None with no snapshot.
        """
        directories = self.directories(partition)
        kept = [d for d in directories if d.complete][-keep:]
        if not kept:
            return None
        oldest = (kept[0].applied_lsn, kept[0].path)
        for directory in (d.path for d in directories if (d.applied_lsn, d.path) < oldest):
            paths = [meta["path"] for chunk in obstore.list(self._store, directory + "/") for meta in chunk]
            if paths:
                obstore.delete(self._store, paths)
        return kept[0].applied_lsn
