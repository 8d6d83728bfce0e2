"""The log API: per-partition, append-only, epoch-fenced, durable on acknowledgement.

This is the seam that carries clusters, shaped like upstream's Bifrost loglets. One protocol,
:class:`LogProvider`, is implemented by every provider (memory, RocksDB, etcd) and by the segment
chain (:mod:`restate_server.log.segments`), which strings providers together.

Semantics every provider keeps (the contract suite in ``tests/log/test_log_contract.py`` checks them):

- LSNs start at 1 and are gapless. ``submit`` assigns them at call time, so call order is log order
  even before anything is awaited; an acknowledged LSN is durable.
- A partition has one sequencer at a time: ``acquire(p, epoch)`` fences every older epoch and
  returns the tail found after the fence is up. An append must carry exactly the acquired epoch,
  otherwise it fails with :class:`Fenced` and writes nothing. (The epoch inside a record is separate:
  it is the leader epoch the state machine uses to drop stale self-proposals.)
- A failed append never leaves a gap: the failed batch and every append submitted after it on that
  partition fail too, and the next append reuses the first failed LSN.
- ``seal`` is final: appends fail with :class:`Sealed`, and the tail stays where it is.
- ``trim(p, lsn)`` drops every record ``<= min(lsn, tail - 1)``; the trim point never moves back and
  survives restarts (the tail does too, even when everything is trimmed). Reading or tailing from at
  or below the trim point raises :class:`TrimGap` carrying it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from restate_server.log.records import Record

LogEntry = tuple[int, Record]
"""One record and its LSN."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TailState:
    """Where a partition's log stands."""

    next_lsn: int
    """The LSN the next append gets (1 for an empty log)."""
    sealed: bool
    epoch: int
    """The sequencer epoch last acquired (0: never acquired)."""
    trim_point: int
    """Records at or below this LSN are gone (0: nothing trimmed)."""


class LogError(Exception):
    """Base of the log's failures."""


class Fenced(LogError):
    """An append or acquire carried an epoch that is not the partition's current sequencer epoch."""

    def __init__(self, partition: int, epoch: int, current: int) -> None:
        super().__init__(
            f"partition {partition}: epoch {epoch} is fenced (current sequencer epoch {current})"
        )
        self.partition = partition
        self.epoch = epoch
        self.current = current


class Sealed(LogError):
    """An append to a sealed log; ``tail`` is the LSN after its last record."""

    def __init__(self, partition: int, tail: int) -> None:
        super().__init__(f"partition {partition}: log is sealed at {tail}")
        self.partition = partition
        self.tail = tail


class TrimGap(LogError):
    """A read from below the trim point; the first readable LSN is ``trim_point + 1``."""

    def __init__(self, partition: int, trim_point: int) -> None:
        super().__init__(f"partition {partition}: records up to {trim_point} were trimmed")
        self.partition = partition
        self.trim_point = trim_point


class LogCorrupted(LogError):
    """Records the log acknowledged are missing or unreadable: never skipped, always reported."""


class LogClosedError(LogError):
    """The log is shutting down (or shut down)."""


class LogProvider(Protocol):
    async def acquire(self, partition: int, epoch: int) -> int:
        """Become the partition's sequencer at ``epoch`` (> the current one, else :class:`Fenced`).

        Returns the next LSN. Appends submitted before the call under the old epoch either landed
        before the fence (and are below the returned tail) or fail with :class:`Fenced`.
        """
        ...

    def submit(self, partition: int, records: Sequence[Record], epoch: int) -> asyncio.Future[int]:
        """Append without awaiting; the future resolves to the last LSN once durable.

        LSNs are assigned now, so call order is log order. Never raises: failures (:class:`Fenced`,
        :class:`Sealed`, :class:`LogClosedError`, a write error) are set on the future.
        """
        ...

    async def append(self, partition: int, records: Sequence[Record], epoch: int) -> int:
        """``await submit(...)``."""
        ...

    async def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[LogEntry]:
        """Every durable record with ``from_lsn <= lsn <= to_lsn`` (bound ``to_lsn`` to read in chunks)."""
        ...

    def tail(self, partition: int, from_lsn: int) -> AsyncIterator[list[LogEntry]]:
        """Durable records from ``from_lsn`` on, in batches, following new appends forever.

        No gaps, no duplicates. Ends (returns) once the log is sealed and everything before the seal
        was yielded; raises :class:`TrimGap` if it starts below the trim point and
        :class:`LogClosedError` when the log closes.
        """
        ...

    async def find_tail(self, partition: int) -> TailState: ...

    async def trim(self, partition: int, up_to_lsn: int) -> int:
        """Drop records ``<= up_to_lsn`` (clamped to the tail); returns the trim point now in force."""
        ...

    async def seal(self, partition: int) -> int:
        """Refuse every further append; returns the sealed tail (the LSN after the last record)."""
        ...

    async def close(self) -> None:
        """Finish what is in flight, then fail every further call with :class:`LogClosedError`."""
        ...


def entries(first_lsn: int, records: Sequence[Record]) -> list[LogEntry]:
    """Number ``records`` from ``first_lsn``."""
    return [(first_lsn + offset, record) for offset, record in enumerate(records)]


def failed(error: BaseException) -> asyncio.Future[int]:
    """An already failed append future (submit never raises)."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One stretch of a partition's log, held by one provider.

    The provider numbers the segment's records from 1; global LSN = ``base_lsn + local - 1``.
    ``sealed_tail`` is the global LSN after the segment's last record, once it is sealed.
    """

    provider: str
    loglet_id: int
    base_lsn: int
    sealed_tail: int | None = None

    @property
    def offset(self) -> int:
        """What to add to a local LSN to get the global one."""
        return self.base_lsn - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    """A partition's log as recorded in metadata: sealed segments, then the writable one (last)."""

    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        assert self.segments, "a chain has at least one segment"
        for before, after in zip(self.segments, self.segments[1:], strict=False):
            assert before.sealed_tail == after.base_lsn, f"segments do not meet: {before} then {after}"

    @property
    def last(self) -> Segment:
        return self.segments[-1]

    def covering(self, from_lsn: int) -> list[Segment]:
        """The segments holding ``from_lsn`` and everything after it, in order."""
        return [s for s in self.segments if s.sealed_tail is None or s.sealed_tail > from_lsn]

    def sealed_at(self, tail: int) -> Chain:
        return Chain(segments=(*self.segments[:-1], _replace_tail(self.last, tail)))

    def extended(self, provider: str, loglet_id: int) -> Chain:
        """The chain with a new writable segment after the (sealed) last one."""
        assert self.last.sealed_tail is not None, "seal the last segment before extending the chain"
        nxt = Segment(provider=provider, loglet_id=loglet_id, base_lsn=self.last.sealed_tail)
        return Chain(segments=(*self.segments, nxt))

    def to_wire(self) -> list[list[object]]:
        return [[s.provider, s.loglet_id, s.base_lsn, s.sealed_tail] for s in self.segments]

    @classmethod
    def from_wire(cls, wire: list[list[object]]) -> Chain:
        segments = []
        for provider, loglet_id, base_lsn, sealed_tail in wire:
            if not (
                isinstance(provider, str)
                and isinstance(loglet_id, int)
                and isinstance(base_lsn, int)
                and (sealed_tail is None or isinstance(sealed_tail, int))
            ):
                raise ValueError(f"not a log segment: {[provider, loglet_id, base_lsn, sealed_tail]!r}")
            segments.append(
                Segment(provider=provider, loglet_id=loglet_id, base_lsn=base_lsn, sealed_tail=sealed_tail)
            )
        return cls(segments=tuple(segments))


def _replace_tail(segment: Segment, tail: int) -> Segment:
    return Segment(
        provider=segment.provider, loglet_id=segment.loglet_id, base_lsn=segment.base_lsn, sealed_tail=tail
    )
