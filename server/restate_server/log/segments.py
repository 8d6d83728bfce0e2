"""A partition's log as a chain of segments on (possibly different) providers.

The chain of each partition is recorded in the metadata store (key ``log-chain/<partition>``,
compare-and-set on its version), so another provider can take over a partition's log: seal the
writable segment, then ``extend`` the chain with a segment on the new provider, whose LSNs continue
where the sealed one stopped. Reads and tails cross segment boundaries. A single segment is the
normal case; a partition without a recorded chain starts with one on the default provider.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence

from restate_server.log.api import Chain, LogEntry, LogProvider, Segment, TailState, TrimGap
from restate_server.log.records import Record
from restate_server.metadata.api import ABSENT, MetadataStore, PreconditionFailed

CHAIN_KEY = "log-chain/{partition}"
CHAIN_POLL_INTERVAL = 0.05  # seconds between looks for the segment after a sealed one


class SegmentedLog:
    """A :class:`~restate_server.log.api.LogProvider` over per-partition chains of segments."""

    def __init__(self, providers: Mapping[str, LogProvider], default: str, metadata: MetadataStore) -> None:
        self._providers = providers
        self._default = default
        self._metadata = metadata
        self._chains: dict[int, tuple[int, Chain]] = {}  # partition -> (metadata version, chain)

    async def chain(self, partition: int) -> Chain:
        """The partition's chain as recorded (created with one segment on first use)."""
        return (await self._load(partition))[1]

    async def _load(self, partition: int) -> tuple[int, Chain]:
        cached = self._chains.get(partition)
        if cached is not None:
            return cached
        key = CHAIN_KEY.format(partition=partition)
        stored = await self._metadata.get(key)
        if stored is None:
            chain = Chain(segments=(Segment(provider=self._default, loglet_id=partition, base_lsn=1),))
            try:
                version = await self._metadata.put(key, _encode(chain), expected_version=ABSENT)
            except PreconditionFailed:  # another node created it first: use theirs
                return await self._load(partition)
        else:
            version, chain = stored.version, Chain.from_wire(json.loads(stored.value))
        self._chains[partition] = (version, chain)
        return version, chain

    async def _store(self, partition: int, chain: Chain) -> None:
        version, _ = await self._load(partition)
        key = CHAIN_KEY.format(partition=partition)
        new_version = await self._metadata.put(key, _encode(chain), expected_version=version)
        self._chains[partition] = (new_version, chain)

    def _writable(self, partition: int) -> tuple[LogProvider, Segment]:
        _, chain = self._chains[partition]
        return self._providers[chain.last.provider], chain.last

    # ---- the chain itself
    async def extend(self, partition: int, provider: str, loglet_id: int) -> Chain:
        """Seal the writable segment and continue the log on ``provider`` (loglet ``loglet_id``).

        The seal and the new segment are recorded in one metadata write, so a tail never sees the
        chain sealed without a successor (which means the whole log is sealed).
        """
        _, chain = await self._load(partition)
        current, segment = self._writable(partition)
        tail = segment.offset + await current.seal(segment.loglet_id)
        extended = chain.sealed_at(tail).extended(provider, loglet_id)
        await self._store(partition, extended)
        return extended

    # ---- the log API
    async def acquire(self, partition: int, epoch: int) -> int:
        self._chains.pop(partition, None)  # a new sequencer starts from the chain as recorded now
        await self._load(partition)
        provider, segment = self._writable(partition)
        return segment.offset + await provider.acquire(segment.loglet_id, epoch)

    def submit(self, partition: int, records: Sequence[Record], epoch: int) -> asyncio.Future[int]:
        """LSNs are assigned now; call :meth:`acquire` (or any awaited call) first to load the chain."""
        provider, segment = self._writable(partition)
        future = provider.submit(segment.loglet_id, records, epoch)
        if segment.offset == 0:
            return future
        return asyncio.ensure_future(_shifted(future, segment.offset))

    async def append(self, partition: int, records: Sequence[Record], epoch: int) -> int:
        await self._load(partition)
        return await self.submit(partition, records, epoch)

    async def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[LogEntry]:
        _, chain = await self._load(partition)
        result: list[LogEntry] = []
        for segment in chain.covering(from_lsn):
            last = to_lsn if segment.sealed_tail is None else min(to_lsn, segment.sealed_tail - 1)
            start = max(from_lsn, segment.base_lsn)
            if last < start:
                break
            result.extend(await self._read_segment(partition, segment, start, last))
        return result

    async def _read_segment(self, partition: int, segment: Segment, start: int, last: int) -> list[LogEntry]:
        provider, shift = self._providers[segment.provider], segment.offset
        try:
            found = await provider.read(segment.loglet_id, start - shift, last - shift)
        except TrimGap:
            raise TrimGap(partition, await self._trim_point(partition)) from None
        return [(lsn + shift, record) for lsn, record in found]

    async def _trim_point(self, partition: int) -> int:
        """The chain's trim point: a fully trimmed segment hands over to the next one's."""
        _, chain = await self._load(partition)
        point = 0
        for segment in chain.segments:
            state = await self._providers[segment.provider].find_tail(segment.loglet_id)
            if state.trim_point:
                point = max(point, state.trim_point + segment.offset)
        return point

    async def tail(self, partition: int, from_lsn: int) -> AsyncIterator[list[LogEntry]]:
        nxt = from_lsn
        while True:
            _, chain = await self._load(partition)
            segment = chain.covering(nxt)[0]
            provider, shift = self._providers[segment.provider], segment.offset
            try:
                # a provider's tail ends when its segment is sealed: then the chain moves on
                async for batch in provider.tail(segment.loglet_id, max(nxt, segment.base_lsn) - shift):
                    nxt = batch[-1][0] + shift + 1
                    yield [(lsn + shift, record) for lsn, record in batch]
                    del batch  # not held while waiting: records may carry megabytes of payload
            except TrimGap:
                raise TrimGap(partition, await self._trim_point(partition)) from None
            while True:  # the segment is sealed: find what comes after it
                self._chains.pop(partition, None)
                _, chain = await self._load(partition)
                if chain.last.base_lsn != segment.base_lsn:
                    break
                if chain.last.sealed_tail is not None:
                    return  # sealed with no successor: the whole log is sealed
                await asyncio.sleep(CHAIN_POLL_INTERVAL)  # sealed by a seal still being recorded

    async def find_tail(self, partition: int) -> TailState:
        await self._load(partition)
        provider, segment = self._writable(partition)
        state = await provider.find_tail(segment.loglet_id)
        return TailState(
            next_lsn=state.next_lsn + segment.offset,
            sealed=state.sealed,
            epoch=state.epoch,
            trim_point=await self._trim_point(partition),
        )

    async def trim(self, partition: int, up_to_lsn: int) -> int:
        _, chain = await self._load(partition)
        point = 0
        for segment in chain.segments:
            if up_to_lsn < segment.base_lsn:
                break
            local = await self._providers[segment.provider].trim(
                segment.loglet_id, up_to_lsn - segment.offset
            )
            point = local + segment.offset if local else point
        return point

    async def seal(self, partition: int) -> int:
        await self._load(partition)
        provider, segment = self._writable(partition)
        tail = segment.offset + await provider.seal(segment.loglet_id)
        _, chain = self._chains[partition]
        if chain.last.sealed_tail is None:
            await self._store(partition, chain.sealed_at(tail))
        return tail

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()


async def _shifted(future: asyncio.Future[int], offset: int) -> int:
    return await future + offset


def _encode(chain: Chain) -> bytes:
    return json.dumps(chain.to_wire()).encode()
