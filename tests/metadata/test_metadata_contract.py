"""One contract for every metadata store provider (compare-and-set, versions, watches, durability)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from restate_server.etcd import EtcdClient
from restate_server.metadata import api
from restate_server.metadata.providers.etcd import EtcdMetadataStore
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.metadata.providers.rocksdb import RocksDbMetadataStore


@pytest.fixture(params=["memory", "rocksdb", "etcd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[api.MetadataStore]:
    if request.param == "memory":
        s: api.MetadataStore = MemoryMetadataStore()
    elif request.param == "rocksdb":
        s = RocksDbMetadataStore.open(tmp_path)
    else:
        from etcd_cluster import unique_prefix

        client = EtcdClient(request.getfixturevalue("etcd_cluster").endpoints)
        s = EtcdMetadataStore(client, root=unique_prefix())
    yield s
    await s.close()
    if request.param == "etcd":
        await client.close()


@pytest.fixture(params=["memory", "etcd"])
async def leased(request: pytest.FixtureRequest) -> AsyncIterator[api.LeasedStore]:
    if request.param == "memory":
        s: api.LeasedStore = MemoryMetadataStore()
        yield s
        await s.close()
        return
    from etcd_cluster import unique_prefix

    client = EtcdClient(request.getfixturevalue("etcd_cluster").endpoints)
    yield EtcdMetadataStore(client, root=unique_prefix())
    await client.close()


async def _next(changes: AsyncIterator[api.Change]) -> api.Change:
    async with asyncio.timeout(10):
        return await anext(changes)


async def test_metadata_get_missing_key_is_none(store: api.MetadataStore) -> None:
    assert await store.get("nope") is None


async def test_metadata_put_bumps_version_from_one(store: api.MetadataStore) -> None:
    assert await store.put("k", b"a", expected_version=None) == 1
    assert await store.put("k", b"b", expected_version=1) == 2
    got = await store.get("k")
    assert got == api.Versioned(version=2, value=b"b")


async def test_metadata_put_with_stale_version_fails_and_changes_nothing(store: api.MetadataStore) -> None:
    await store.put("k", b"a", expected_version=api.ABSENT)
    with pytest.raises(api.PreconditionFailed):
        await store.put("k", b"b", expected_version=api.ABSENT)
    with pytest.raises(api.PreconditionFailed):
        await store.put("k", b"b", expected_version=7)
    assert await store.get("k") == api.Versioned(version=1, value=b"a")


async def test_metadata_delete_respects_precondition(store: api.MetadataStore) -> None:
    await store.put("k", b"a", expected_version=None)
    with pytest.raises(api.PreconditionFailed):
        await store.delete("k", expected_version=2)
    await store.delete("k", expected_version=1)
    assert await store.get("k") is None


async def test_metadata_rocksdb_survives_reopen(tmp_path: Path) -> None:
    first = RocksDbMetadataStore.open(tmp_path)
    await first.put("schema", b"{}", expected_version=None)
    await first.close()
    second = RocksDbMetadataStore.open(tmp_path)
    try:
        assert await second.get("schema") == api.Versioned(version=1, value=b"{}")
        assert (tmp_path / "metadata").is_dir()
    finally:
        await second.close()


async def test_metadata_version_restarts_after_delete(store: api.MetadataStore) -> None:
    await store.put("k", b"a", expected_version=api.ABSENT)
    await store.put("k", b"b", expected_version=1)
    await store.delete("k", expected_version=None)
    assert await store.put("k", b"c", expected_version=api.ABSENT) == 1


async def test_metadata_watch_reports_current_value_then_changes(store: api.MetadataStore) -> None:
    await store.put("cfg", b"1", expected_version=None)
    changes = store.watch("cfg")
    assert await _next(changes) == api.Change(key="cfg", value=api.Versioned(version=1, value=b"1"))
    await store.put("cfg", b"2", expected_version=1)
    await store.put("other", b"x", expected_version=None)
    await store.delete("cfg", expected_version=2)
    assert await _next(changes) == api.Change(key="cfg", value=api.Versioned(version=2, value=b"2"))
    assert await _next(changes) == api.Change(key="cfg", value=None)
    await changes.aclose()


async def test_metadata_watch_of_a_prefix(store: api.MetadataStore) -> None:
    await store.put("nodes/a", b"1", expected_version=None)
    await store.put("nodesx", b"not under the prefix", expected_version=None)
    changes = store.watch("nodes/", prefix=True)
    assert await _next(changes) == api.Change(key="nodes/a", value=api.Versioned(version=1, value=b"1"))
    await store.put("nodesy", b"ignored", expected_version=None)
    await store.put("nodes/b", b"2", expected_version=None)
    assert await _next(changes) == api.Change(key="nodes/b", value=api.Versioned(version=1, value=b"2"))
    await changes.aclose()


async def test_metadata_key_under_a_lease_disappears_when_it_expires(leased: api.LeasedStore) -> None:
    lease = await leased.grant_lease(2)
    await leased.put("alive/n1", b"n1", expected_version=api.ABSENT, lease=lease)
    assert await leased.keep_alive(lease)
    assert await leased.get("alive/n1") is not None
    changes = leased.watch("alive/n1")
    assert (await _next(changes)).value is not None
    async with asyncio.timeout(15):  # no more keep-alives: the key goes with the lease
        assert await anext(changes) == api.Change(key="alive/n1", value=None)
    assert await leased.get("alive/n1") is None
    assert not await leased.keep_alive(lease)
    await changes.aclose()


async def test_metadata_revoked_lease_deletes_its_keys(leased: api.LeasedStore) -> None:
    lease = await leased.grant_lease(30)
    await leased.put("leader/p0", b"n1", expected_version=None, lease=lease)
    await leased.put("durable", b"stays", expected_version=None)
    await leased.revoke_lease(lease)
    assert await leased.get("leader/p0") is None
    assert await leased.get("durable") is not None
