"""Node ids and generations in the metadata store: the first registration takes the next free id, a
restart the next generation, and nodes registering at once never share an id."""

from __future__ import annotations

import asyncio

from restate_server.cluster.ctl import registry
from restate_server.cluster.ctl.documents import NodeId
from restate_server.metadata.providers.memory import MemoryMetadataStore

ROLES = ("admin", "worker")


async def test_first_registrations_take_the_next_ids_and_a_restart_the_next_generation() -> None:
    store = MemoryMetadataStore()
    a = await registry.register(store, name="a", address="http://h:1/", roles=ROLES)
    b = await registry.register(store, name="b", address="http://h:2/", roles=ROLES)
    assert (a.node_id, b.node_id) == (NodeId(id=1, generation=1), NodeId(id=2, generation=1))

    again = await registry.register(store, name="a", address="http://h:9/", roles=ROLES)
    assert again.node_id == NodeId(id=1, generation=2)
    config = await registry.load(store)
    assert config.version == 3
    assert config.by_name("a") == again  # the new address and generation replace the old entry
    assert [n.name for n in config.nodes] == ["b", "a"]


async def test_the_fingerprint_is_fixed_by_the_first_registration() -> None:
    store = MemoryMetadataStore()
    assert (await registry.load(store)).version == 0
    await registry.register(store, name="a", address="http://h:1/", roles=ROLES)
    fingerprint = (await registry.load(store)).fingerprint
    await registry.register(store, name="b", address="http://h:2/", roles=ROLES)
    assert fingerprint > 0
    assert (await registry.load(store)).fingerprint == fingerprint


async def test_nodes_registering_at_once_get_distinct_ids() -> None:
    store = MemoryMetadataStore()
    names = [f"n{i}" for i in range(6)]
    nodes = await asyncio.gather(
        *(
            registry.register(store, name=n, address=f"http://h:{i}/", roles=ROLES)
            for i, n in enumerate(names)
        )
    )
    assert sorted(n.node_id.id for n in nodes) == [1, 2, 3, 4, 5, 6]
    assert {n.node_id.generation for n in nodes} == {1}
    assert sorted(n.name for n in (await registry.load(store)).nodes) == names
