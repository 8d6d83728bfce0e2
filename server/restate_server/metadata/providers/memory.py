"""An in-process metadata store with watches and leases, for tests and for nodes that need no durability."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator

from restate_server.metadata import api
from restate_server.metadata.watchers import Watchers


class MemoryMetadataStore:
    """A dict with versions; plain method bodies with no awaits, so every call is atomic."""

    def __init__(self) -> None:
        self._data: dict[str, api.Versioned] = {}
        self._watchers = Watchers()
        self._lease_ids = itertools.count(1)
        self._leases: dict[int, tuple[int, asyncio.TimerHandle]] = {}  # id -> (ttl, expiry)
        self._lease_of: dict[str, int] = {}

    async def get(self, key: str) -> api.Versioned | None:
        """See :meth:`api.MetadataStore.get`."""
        return self._data.get(key)

    async def put(
        self, key: str, value: bytes, *, expected_version: int | None, lease: int | None = None
    ) -> int:
        """See :meth:`api.LeasedStore.put`."""
        current = self._data.get(key)
        api.check_precondition(key, current, expected_version)
        if lease is not None and lease not in self._leases:
            raise api.MetadataError(f"lease {lease} does not exist (expired or revoked)")
        version = (current.version if current else api.ABSENT) + 1
        stored = self._data[key] = api.Versioned(version=version, value=bytes(value))
        self._lease_of.pop(key, None)
        if lease is not None:
            self._lease_of[key] = lease
        self._watchers.publish(api.Change(key=key, value=stored))
        return version

    async def delete(self, key: str, *, expected_version: int | None) -> None:
        """See :meth:`api.MetadataStore.delete`."""
        api.check_precondition(key, self._data.get(key), expected_version)
        self._remove(key)

    def _remove(self, key: str) -> None:
        self._lease_of.pop(key, None)
        if self._data.pop(key, None) is not None:
            self._watchers.publish(api.Change(key=key, value=None))

    def watch(self, key: str, *, prefix: bool = False) -> AsyncGenerator[api.Change, None]:
        """See :meth:`api.MetadataStore.watch`."""

        def snapshot() -> list[api.Change]:
            keys = sorted(k for k in self._data if k.startswith(key)) if prefix else [key]
            return [api.Change(key=k, value=self._data[k]) for k in keys if k in self._data]

        return self._watchers.follow(key, prefix, snapshot)

    async def grant_lease(self, ttl: int) -> int:
        """See :meth:`api.LeasedStore.grant_lease`."""
        lease = next(self._lease_ids)
        self._leases[lease] = (ttl, asyncio.get_running_loop().call_later(ttl, self._expire, lease))
        return lease

    async def keep_alive(self, lease: int) -> bool:
        """See :meth:`api.LeasedStore.keep_alive`."""
        held = self._leases.get(lease)
        if held is None:
            return False
        ttl, expiry = held
        expiry.cancel()
        self._leases[lease] = (ttl, asyncio.get_running_loop().call_later(ttl, self._expire, lease))
        return True

    async def revoke_lease(self, lease: int) -> None:
        """See :meth:`api.LeasedStore.revoke_lease`."""
        held = self._leases.get(lease)
        if held is not None:
            held[1].cancel()
            self._expire(lease)

    def _expire(self, lease: int) -> None:
        self._leases.pop(lease, None)
        for key in [k for k, owner in self._lease_of.items() if owner == lease]:
            self._remove(key)

    async def close(self) -> None:
        """Cancel the lease timers."""
        for _ttl, expiry in self._leases.values():
            expiry.cancel()
