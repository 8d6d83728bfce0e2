"""The metadata store API: a versioned key-value map with compare-and-set.

Cluster-wide facts (the schema registry, later partition placement and leader epochs) live here, not in
a partition's log. Every value carries a version that grows by one on each write, and a write can be
made conditional on the version it was computed from, so two writers never silently overwrite each
other. Providers (memory, RocksDB, later etcd) implement :class:`MetadataStore`; nothing above this
module knows which one is in use.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class MetadataError(Exception):
    """Base class of metadata store failures."""


class PreconditionFailed(MetadataError):
    """A conditional write found another version than the one it expected."""

    def __init__(self, key: str, expected: int | None, actual: int | None) -> None:
        super().__init__(f"precondition failed for {key!r}: expected version {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Versioned(NamedTuple):
    """A stored value and the version it was written with (the first write is version 1).

    A named tuple, so ``version, value = await store.get(key)`` works too.
    """

    version: int
    value: bytes


ABSENT = 0
"""The version to expect when the key must not exist yet."""


class MetadataStore(Protocol):
    """Versioned key-value storage with compare-and-set; writes are durable when they return."""

    async def get(self, key: str) -> Versioned | None:
        """The current value of ``key``, or ``None`` if it was never written (or was deleted)."""
        ...

    async def put(self, key: str, value: bytes, *, expected_version: int | None) -> int:
        """Write ``value`` and return its new version.

        ``expected_version=None`` writes unconditionally; ``ABSENT`` (0) requires that the key does
        not exist; any other number requires that exact current version. A mismatch raises
        :class:`PreconditionFailed` and changes nothing.
        """
        ...

    async def delete(self, key: str, *, expected_version: int | None) -> None:
        """Remove ``key`` (same precondition rules as :meth:`put`)."""
        ...

    async def close(self) -> None:
        """Release the provider's resources."""
        ...


def check_precondition(key: str, current: Versioned | None, expected_version: int | None) -> None:
    """Raise :class:`PreconditionFailed` unless ``current`` is at ``expected_version``.

    Shared by the providers so that they all agree on the rules.
    """
    if expected_version is None:
        return
    actual = current.version if current is not None else ABSENT
    if actual != expected_version:
        raise PreconditionFailed(key, expected_version, None if current is None else current.version)
