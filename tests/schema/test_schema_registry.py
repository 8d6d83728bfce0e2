"""The schema registry: revisions, latest deployment, overwrite, type changes, removal, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.config import Config
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.metadata.providers.rocksdb import RocksDbMetadataStore
from restate_server.schema import errors
from restate_server.schema.model import HandlerType, ProtocolType, ServiceType
from restate_server.schema.options import invocation_options
from restate_server.schema.registry import AddResult, SchemaRegistry, ServiceChanges
from schema_fixtures import FakeDiscovery, manifest

A = "http://127.0.0.1:9080"
B = "http://127.0.0.1:9081/"


@pytest.fixture
async def registry(fake_discovery: FakeDiscovery) -> SchemaRegistry:
    fake_discovery.manifests[A] = manifest()
    fake_discovery.manifests[B] = manifest()
    return await SchemaRegistry.load(MemoryMetadataStore(), discoverer=fake_discovery)


async def test_registry_register_creates_revision_one(registry: SchemaRegistry) -> None:
    result, dep = await registry.register_deployment(A)
    assert result is AddResult.CREATED
    assert dep.id.startswith("dp_1")
    assert len(dep.id) == 26
    assert dep.uri == "http://127.0.0.1:9080/"
    assert dep.protocol_type is ProtocolType.BIDI_STREAM
    assert (dep.min_protocol_version, dep.max_protocol_version) == (5, 7)
    greeter = registry.service("Greeter")
    assert greeter is not None
    assert greeter.revision == 1
    assert greeter.deployment_id == dep.id
    assert registry.handler("Counter", "get") is not None
    assert registry.handler("Counter", "get").ty is HandlerType.SHARED  # type: ignore[union-attr]
    assert registry.handler("Signup", "run").ty is HandlerType.WORKFLOW  # type: ignore[union-attr]
    assert registry.version == 1


async def test_registry_same_address_without_overwrite_is_unchanged_and_skips_discovery(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    _, first = await registry.register_deployment(A)
    result, again = await registry.register_deployment(A + "/")
    assert result is AddResult.UNCHANGED
    assert again.id == first.id
    assert fake_discovery.calls == [A]
    assert registry.version == 1


async def test_registry_overwrite_keeps_id_and_bumps_revision(registry: SchemaRegistry) -> None:
    _, first = await registry.register_deployment(A)
    result, second = await registry.register_deployment(A, overwrite=True, allow_breaking=True)
    assert result is AddResult.OVERWRITTEN
    assert second.id == first.id
    assert registry.service("Greeter").revision == 2  # type: ignore[union-attr]
    assert len(registry.deployments()) == 1


async def test_registry_new_deployment_becomes_latest_and_old_one_is_kept(registry: SchemaRegistry) -> None:
    _, old = await registry.register_deployment(A)
    _, new = await registry.register_deployment(B)
    assert registry.service("Greeter").revision == 2  # type: ignore[union-attr]
    assert registry.latest_deployment("Greeter").id == new.id  # type: ignore[union-attr]
    pinned = registry.deployment(old.id)
    assert pinned is not None
    assert pinned.services["Greeter"].revision == 1


async def test_registry_type_change_refused_unless_breaking(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    await registry.register_deployment(A)
    changed = manifest()
    changed["services"][1]["ty"] = "SERVICE"
    changed["services"][1]["handlers"] = [{"name": "add"}]
    fake_discovery.manifests[B] = changed
    with pytest.raises(errors.DifferentType) as info:
        await registry.register_deployment(B)
    assert info.value.code == "META0006"
    assert info.value.status == 409
    _, dep = await registry.register_deployment(B, allow_breaking=True)
    assert registry.service("Counter").ty is ServiceType.SERVICE  # type: ignore[union-attr]
    assert registry.service("Counter").deployment_id == dep.id  # type: ignore[union-attr]


async def test_registry_removed_handlers_are_allowed(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    await registry.register_deployment(A)
    fewer = manifest()
    fewer["services"][0]["handlers"] = fewer["services"][0]["handlers"][:1]
    fake_discovery.manifests[B] = fewer
    await registry.register_deployment(B)
    assert registry.handler("Greeter", "fail") is None


async def test_registry_delete_falls_back_to_previous_revision(registry: SchemaRegistry) -> None:
    _, old = await registry.register_deployment(A)
    _, new = await registry.register_deployment(B)
    await registry.delete_deployment(new.id)
    assert registry.service("Greeter").deployment_id == old.id  # type: ignore[union-attr]
    with pytest.raises(errors.NotFound):
        await registry.delete_deployment(new.id)


async def test_registry_dry_run_returns_result_without_storing(registry: SchemaRegistry) -> None:
    _, first = await registry.register_deployment(A)
    result, dry = await registry.register_deployment(A, overwrite=True, dry_run=True)
    assert (result, dry.id) == (AddResult.OVERWRITTEN, first.id)
    assert dry.services["Greeter"].revision == 2
    assert registry.service("Greeter").revision == 1  # type: ignore[union-attr]
    result, fresh = await registry.register_deployment(B, dry_run=True)
    assert result is AddResult.CREATED
    assert registry.deployment(fresh.id) is None


async def test_registry_reserved_service_name_refused(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    bad = manifest()
    bad["services"][0]["name"] = "RestateThing"
    fake_discovery.manifests[B] = bad
    with pytest.raises(errors.ReservedName):
        await registry.register_deployment(B)


async def test_registry_modify_service_overrides_until_next_registration(registry: SchemaRegistry) -> None:
    await registry.register_deployment(A)
    calls: list[int] = []
    registry.add_listener(lambda r: calls.append(r.version))
    svc = await registry.modify_service("Greeter", ServiceChanges(public=False, abort_timeout=5.0))
    assert svc.public is False
    assert svc.abort_timeout == 5.0
    assert registry.handler("Greeter", "greet").public is False  # type: ignore[union-attr]
    assert calls == [2]
    with pytest.raises(errors.InvalidService):
        await registry.modify_service("Greeter", ServiceChanges(workflow_completion_retention=1.0))
    await registry.register_deployment(B)
    assert registry.service("Greeter").public is True  # type: ignore[union-attr]


async def test_registry_persists_through_rocksdb_reopen(
    tmp_path: Path, fake_discovery: FakeDiscovery
) -> None:
    fake_discovery.manifests[A] = manifest()
    store = RocksDbMetadataStore.open(tmp_path)
    registry = await SchemaRegistry.load(store, discoverer=fake_discovery)
    _, dep = await registry.register_deployment(A)
    await registry.modify_service("Counter", ServiceChanges(inactivity_timeout=30.0))
    await store.close()
    store = RocksDbMetadataStore.open(tmp_path)
    try:
        reloaded = await SchemaRegistry.load(store)
        assert reloaded.deployments() == registry.deployments()
        assert reloaded.service("Counter").inactivity_timeout == 30.0  # type: ignore[union-attr]
        assert reloaded.version == registry.version
        assert reloaded.deployment(dep.id) == registry.deployment(dep.id)
    finally:
        await store.close()


async def test_registry_concurrent_writer_is_detected_and_retried(fake_discovery: FakeDiscovery) -> None:
    fake_discovery.manifests[A] = manifest()
    fake_discovery.manifests[B] = manifest()
    store = MemoryMetadataStore()
    one = await SchemaRegistry.load(store, discoverer=fake_discovery)
    two = await SchemaRegistry.load(store, discoverer=fake_discovery)
    await one.register_deployment(A)
    await two.register_deployment(B)  # two's view is stale: CAS fails, it reloads and retries
    assert {d.uri for d in two.deployments()} == {A + "/", B}
    assert two.service("Greeter").revision == 2  # type: ignore[union-attr]


async def test_invocation_options_handler_over_service_over_defaults(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    custom = manifest()
    custom["services"][0]["inactivityTimeout"] = 30_000
    custom["services"][0]["retryPolicyMaxAttempts"] = 3
    custom["services"][0]["handlers"][0]["abortTimeout"] = 5_000
    custom["services"][0]["handlers"][0]["retryPolicyOnMaxAttempts"] = "KILL"
    fake_discovery.manifests[B] = custom
    await registry.register_deployment(B)
    svc = registry.service("Greeter")
    assert svc is not None
    config = Config()
    opts = invocation_options(svc, svc.handlers["greet"], config)
    assert opts.inactivity_timeout == 30.0
    assert opts.abort_timeout == 5.0
    assert opts.retry.max_attempts == 3
    assert opts.retry.on_max_attempts == "kill"
    assert opts.retry.initial_interval == config.default_retry_policy.initial_interval
    assert opts.journal_retention == config.default_journal_retention
    assert invocation_options(svc, svc.handlers["greet"], config) is opts  # cached
    other = invocation_options(svc, svc.handlers["fail"], config)
    assert other.abort_timeout == config.worker.invoker.abort_timeout
    assert other.retry.on_max_attempts == "pause"


async def test_registry_update_in_place_keeps_services_unless_overwrite(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    _, dep = await registry.register_deployment(A)
    moved = "http://127.0.0.1:9099/"
    fewer = manifest()
    fewer["services"] = fewer["services"][:1]
    fake_discovery.manifests[moved] = fewer
    updated = await registry.update_deployment(dep.id, uri=moved)
    assert (updated.id, updated.uri) == (dep.id, moved)
    assert set(updated.services) == {"Greeter", "Counter", "Signup"}
    updated = await registry.update_deployment(dep.id, overwrite=True)
    assert set(updated.services) == {"Greeter"}
    assert updated.services["Greeter"].revision == 1
    assert registry.service("Counter") is None


async def test_registry_update_refuses_protocol_change(
    registry: SchemaRegistry, fake_discovery: FakeDiscovery
) -> None:
    _, dep = await registry.register_deployment(A)
    fake_discovery.manifests[A + "/"] = manifest(minProtocolVersion=6)
    with pytest.raises(errors.DifferentProtocolVersions) as info:
        await registry.update_deployment(dep.id, additional_headers={"x": "y"})
    assert info.value.code == "META0016"
    assert "from 5..=7 to 6..=7" in info.value.message
