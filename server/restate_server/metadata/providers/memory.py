"""An in-process metadata store, for tests and for nodes that need no durability."""

from __future__ import annotations

from restate_server.metadata import api


class MemoryMetadataStore:
    """A dict with versions; plain method bodies with no awaits, so every call is atomic."""

    def __init__(self) -> None:
        self._data: dict[str, api.Versioned] = {}

    async def get(self, key: str) -> api.Versioned | None:
        """See :meth:`api.MetadataStore.get`."""
        return self._data.get(key)

    async def put(self, key: str, value: bytes, *, expected_version: int | None) -> int:
        """See :meth:`api.MetadataStore.put`."""
        current = self._data.get(key)
        api.check_precondition(key, current, expected_version)
        version = (current.version if current else api.ABSENT) + 1
        self._data[key] = api.Versioned(version=version, value=bytes(value))
        return version

    async def delete(self, key: str, *, expected_version: int | None) -> None:
        """See :meth:`api.MetadataStore.delete`."""
        api.check_precondition(key, self._data.get(key), expected_version)
        self._data.pop(key, None)

    async def close(self) -> None:
        """Nothing to release."""
