"""The snapshot metadata document and the snapshot errors.

The document is JSON so an operator can read it with `aws s3 cp … -` or `cat`; `latest.json` in a
partition's directory is a byte-for-byte copy of the newest snapshot's `metadata.json`. The format
version changes whenever the data file or the key layout (`storage/keys.py`) changes incompatibly: a
node refuses a snapshot whose version it does not know rather than load rows it would misread.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

FORMAT_VERSION = 1
"""1: one RocksDB SST file (zstd), the partition's rows of every table with the keys of `storage/keys.py`."""


class SnapshotError(Exception):
    """A snapshot could not be created, found or restored."""


class PartitionNotEmpty(SnapshotError):
    """A restore into a store that already holds rows of the partition (it would mix two states)."""


class SnapshotMissing(SnapshotError):
    """A snapshot's file is gone (pruned after its metadata was read): look for the latest again."""


class SnapshotCorrupted(SnapshotError):
    """A snapshot's data does not match its metadata (size, checksum, applied LSN, format)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotMetadata:
    """What `metadata.json` says about one snapshot."""

    format_version: int
    snapshot_id: str
    partition_id: int
    applied_lsn: int
    """The partition's APPLIED_LSN in the snapshot: the log suffix to replay starts after it."""
    created_at: datetime
    cluster_name: str
    node_name: str
    directory: str
    """The snapshot's directory, relative to the destination (`<partition>/lsn_<lsn>-<id>`)."""
    data_file: str
    """The SST file's name inside `directory`."""
    rows: int
    size_bytes: int
    sha256: str
    """Hex SHA-256 of the data file, checked before the rows are loaded."""

    def data_path(self) -> str:
        return f"{self.directory}/{self.data_file}"

    def encode(self) -> bytes:
        document = asdict(self)
        document["created_at"] = self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return json.dumps(document, indent=2).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> SnapshotMetadata:
        try:
            document = json.loads(data)
            version = document["format_version"]
            if version != FORMAT_VERSION:
                raise SnapshotCorrupted(
                    f"snapshot format version {version} is not supported (this node reads {FORMAT_VERSION})"
                )
            created = datetime.fromisoformat(str(document.pop("created_at")).replace("Z", "+00:00"))
            known = {f.name for f in fields(cls)}  # fields added later by a newer node are skipped
            return cls(**{k: v for k, v in document.items() if k in known}, created_at=created)
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotCorrupted(f"unreadable snapshot metadata: {exc}") from exc
