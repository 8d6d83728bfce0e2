"""One led partition's outbox shuffle: delivers its outbox to the target partitions, in order.

Each message is appended to its target's log tagged ``(source partition, seq)``; the target applies
a source's messages only with increasing sequences (`storage.fsm.seen_duplicate`), so a message
delivered after a higher one from the same source would be dropped as a duplicate. Order is kept:

- the messages of one round are submitted in sequence order, and the log fails every append to a
  partition submitted after a failed one, so a higher sequence never lands behind a lower one that
  failed;
- after a failure the round is redone from the first failed message, after a backoff (what landed
  after it is delivered again and dropped as a duplicate by its target).

Delivered rows are removed by a `TruncateOutbox` record proposed to the source partition (so every
replica's outbox agrees), retried until it lands. The queue lives in this object and is loaded from
the outbox table when leadership starts, so a restarted delivery task misses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from restate_server.log.records import Record, decode
from restate_server.observability import metrics
from restate_server.worker.leadership.proposals import backoff

log = logging.getLogger(__name__)

Deliver = Callable[[int, Record], asyncio.Future[int]]
"""Submit a record to a target partition's log (LSN assigned at call time)."""
Truncate = Callable[[int], Awaitable[object]]
"""Propose `TruncateOutbox(up_to_seq)` to the source partition until it lands."""


class OutboxShuffle:
    def __init__(self, partition: int, deliver: Deliver, truncate: Truncate) -> None:
        self.partition = partition
        self._deliver = deliver
        self._truncate = truncate
        self._queue: deque[tuple[int, int, bytes]] = deque()  # (seq, target, encoded record), by seq
        self._wakeup = asyncio.Event()
        self.failures = 0
        """Consecutive rounds that did not deliver everything."""

    def enqueue(self, seq: int, target: int, record: bytes) -> None:
        if self._queue and seq <= self._queue[-1][0]:
            return  # already queued (loaded from the store and announced by an action)
        self._queue.append((seq, target, record))
        self._wakeup.set()

    @property
    def pending(self) -> list[int]:
        """Sequences not yet known to be delivered."""
        return [seq for seq, _, _ in self._queue]

    async def run(self) -> None:
        """Deliver forever; the leadership cancels this task when it steps down."""
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self.deliver_round()
            if self.failures:
                await asyncio.sleep(backoff(self.failures))

    async def deliver_round(self) -> None:
        """Submit everything queued, in order; truncate the delivered prefix; keep the rest."""
        batch = list(self._queue)
        futures = []
        for seq, target, data in batch:
            record = decode(data)
            record.dedup = (self.partition, seq)
            futures.append(self._deliver(target, record))
        results = await asyncio.gather(*futures, return_exceptions=True)
        delivered = next((i for i, r in enumerate(results) if isinstance(r, BaseException)), len(batch))
        if delivered < len(batch):
            self.failures += 1
            seq, target, _ = batch[delivered]
            log.warning(
                "partition %d: delivering outbox message %d to partition %d failed (%s); redelivering"
                " from there in %.1fs",
                self.partition,
                seq,
                target,
                results[delivered],
                backoff(self.failures),
            )
        else:
            self.failures = 0
        if delivered:
            metrics.PARTITION_SHUFFLE_MESSAGES.labels(str(self.partition)).inc(delivered)
            up_to = batch[delivered - 1][0]
            while self._queue and self._queue[0][0] <= up_to:
                self._queue.popleft()
            await self._truncate(up_to)
