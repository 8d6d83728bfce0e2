"""One contract for every metadata store provider (compare-and-set, versions, durability)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from restate_server.metadata import api
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.metadata.providers.rocksdb import RocksDbMetadataStore

Factory = Callable[[Path], api.MetadataStore]

PROVIDERS: list[Factory] = [lambda _: MemoryMetadataStore(), RocksDbMetadataStore.open]


@pytest.fixture(params=PROVIDERS, ids=["memory", "rocksdb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[api.MetadataStore]:
    s = request.param(tmp_path)
    yield s
    await s.close()


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
