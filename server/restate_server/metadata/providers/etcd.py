"""The cluster's metadata store on etcd: versions are etcd's own per-key ``version``.

etcd counts a key's writes since its creation (1 on create, +1 per put, 0 once deleted), which is
exactly this API's version, so compare-and-set is one Txn comparing ``version(key)``
(``expected_version=0`` = the key is absent). Keys live under ``{root}/md/``. Leases are etcd leases
(granted TTL in seconds, at least etcd's minimum of ~2 s); a watch reads the current state and the
revision it was read at in one request, then watches from the next revision, and starts over from a
fresh read if the history it needs was compacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

from restate_server import etcd
from restate_server.metadata import api

log = logging.getLogger(__name__)

RETRY_DELAY = 0.1  # seconds before a broken watch starts again


def _versioned(kv: Any) -> api.Versioned:
    return api.Versioned(version=int(kv.version), value=bytes(kv.value))


class EtcdMetadataStore:
    """A :class:`~restate_server.metadata.api.LeasedStore` on etcd; the client belongs to the caller."""

    def __init__(self, client: etcd.EtcdClient, *, root: bytes = b"/restate") -> None:
        self._client = client
        self._prefix = root + b"/md/"

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    async def get(self, key: str) -> api.Versioned | None:
        """See :meth:`api.MetadataStore.get`."""
        found = await self._client.range(self._key(key))
        return _versioned(found.kvs[0]) if found.kvs else None

    async def put(
        self, key: str, value: bytes, *, expected_version: int | None, lease: int | None = None
    ) -> int:
        """See :meth:`api.LeasedStore.put`."""
        raw = self._key(key)
        compare = [] if expected_version is None else [etcd.version_is(raw, expected_version)]
        response = await self._client.txn(
            compare, [etcd.op_put(raw, value, lease=lease or 0), etcd.op_range(raw)], [etcd.op_range(raw)]
        )
        if not response.succeeded:
            self._fail(key, expected_version, response.responses[0].response_range.kvs)
        return int(response.responses[1].response_range.kvs[0].version)

    async def delete(self, key: str, *, expected_version: int | None) -> None:
        """See :meth:`api.MetadataStore.delete`."""
        raw = self._key(key)
        compare = [] if expected_version is None else [etcd.version_is(raw, expected_version)]
        response = await self._client.txn(compare, [etcd.op_delete(raw)], [etcd.op_range(raw)])
        if not response.succeeded:
            self._fail(key, expected_version, response.responses[0].response_range.kvs)

    @staticmethod
    def _fail(key: str, expected_version: int | None, kvs: Any) -> None:
        raise api.PreconditionFailed(key, expected_version, int(kvs[0].version) if kvs else None)

    async def watch(self, key: str, *, prefix: bool = False) -> AsyncGenerator[api.Change, None]:
        """See :meth:`api.MetadataStore.watch`."""
        raw = self._key(key)
        end = etcd.prefix_end(raw) if prefix else b""
        present: set[str] = set()
        revision: int | None = None  # the last revision reported; None: read the state again
        while True:
            if revision is None:
                current = await self._client.range(raw, end)
                now = {self._name(kv.key): _versioned(kv) for kv in current.kvs}
                for gone in sorted(present - now.keys()):  # deleted while the history was lost
                    yield api.Change(key=gone, value=None)
                for name, value in now.items():
                    yield api.Change(key=name, value=value)
                present, revision = set(now), int(current.header.revision)
            stream = self._client.watch(raw, end, revision + 1)
            try:
                async for response in stream:
                    for event in response.events:
                        name = self._name(event.kv.key)
                        if event.type == etcd.EVENT_DELETE:
                            present.discard(name)
                            yield api.Change(key=name, value=None)
                        else:
                            present.add(name)
                            yield api.Change(key=name, value=_versioned(event.kv))
                    revision = max(revision, int(response.header.revision))
            except etcd.Compacted:
                log.info("metadata watch on %r lost its history: reading the current state again", key)
                revision = None
            except Exception as exc:
                if not etcd.is_retryable(exc):
                    raise
                await asyncio.sleep(RETRY_DELAY)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()

    def _name(self, raw: bytes) -> str:
        return raw[len(self._prefix) :].decode()

    async def grant_lease(self, ttl: int) -> int:
        """See :meth:`api.LeasedStore.grant_lease`."""
        lease, _granted = await self._client.lease_grant(ttl)
        return lease

    async def keep_alive(self, lease: int) -> bool:
        """See :meth:`api.LeasedStore.keep_alive`."""
        return await self._client.lease_keepalive(lease) > 0

    async def revoke_lease(self, lease: int) -> None:
        """See :meth:`api.LeasedStore.revoke_lease`."""
        await self._client.lease_revoke(lease)

    async def close(self) -> None:
        """Nothing of its own to release: the client belongs to the caller."""
