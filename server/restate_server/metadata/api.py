"""The metadata store API: a versioned key-value map with compare-and-set.

Cluster-wide facts (the schema registry, partition placement, leader epochs, log chains) live here,
not in a partition's log. Every value carries a version that grows by one on each write, and a write
can be made conditional on the version it was computed from, so two writers never silently overwrite
each other. A watch follows a key or a prefix. Providers (memory, RocksDB, etcd) implement
:class:`MetadataStore`; those a cluster runs on (memory for tests, etcd) also implement
:class:`LeasedStore`: keys that disappear when their writer stops renewing a lease (liveness, leader
leases). Nothing above this module knows which provider is in use.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What a watch reports: a key's new value, or ``None`` once it was deleted (or its lease expired)."""

    key: str
    value: Versioned | None


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

    def watch(self, key: str, *, prefix: bool = False) -> AsyncGenerator[Change, None]:
        """The current value of ``key`` (of every key under it, with ``prefix``), then each change, in order.

        Starting with the current state makes get-then-watch race free. After the provider lost
        history (reconnect, compaction) it may report a key's current value again, never skip one.
        """
        ...

    async def close(self) -> None:
        """Release the provider's resources."""
        ...


class LeasedStore(MetadataStore, Protocol):
    """A store with leases: a key written under a lease is deleted when the lease expires."""

    async def put(
        self, key: str, value: bytes, *, expected_version: int | None, lease: int | None = None
    ) -> int:
        """:meth:`MetadataStore.put`, optionally attaching the key to ``lease``."""
        ...

    async def grant_lease(self, ttl: int) -> int:
        """A new lease living ``ttl`` seconds unless kept alive; returns its id."""
        ...

    async def keep_alive(self, lease: int) -> bool:
        """Renew the lease for another TTL; ``False`` when it had already expired (its keys are gone)."""
        ...

    async def revoke_lease(self, lease: int) -> None:
        """End the lease now, deleting its keys."""
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
