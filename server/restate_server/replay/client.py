"""A small client of the Replay API: iterate over an object's state history.

```python
with ReplayClient("127.0.0.1:5122") as client:
    for event in client.replay(namespace="Counter", agent_id="alice", start_ts=1700000000000):
        print(event.txn_id, event_json(event))
```

Breaking out of the loop (or closing the generator) cancels the call, which stops the server's
reads. The channel turns HTTP/2 BDP probing off, so the flow-control window stays at its initial
size and a client that reads slowly holds the server back instead of buffering the history.
Errors are `grpc.RpcError`s carrying the status code (NOT_FOUND, INVALID_ARGUMENT, OUT_OF_RANGE).
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import json_format

from restate_server.replay import replay_pb2 as pb, replay_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:5122"
CHANNEL_OPTIONS = (("grpc.http2.bdp_probe", 0),)


class ReplayClient:
    """A channel to one node's Replay API (its node port, `bind-address`)."""

    def __init__(self, address: str = DEFAULT_ADDRESS) -> None:
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = replay_pb2_grpc.StateReplayStub(self._channel)

    def replay(
        self,
        *,
        namespace: str,
        agent_id: str,
        start_ts: int | None = None,
        end_ts: int | None = None,
        timeout: float | None = None,
    ) -> Generator[pb.ReplayEvent, None, None]:
        """The events of one object key in commit order; bounds are inclusive epoch milliseconds."""
        request = pb.ReplayRequest(namespace=namespace, agent_id=agent_id, start_ts=start_ts, end_ts=end_ts)
        call = self._stub.Replay(request, timeout=timeout)
        try:
            yield from call
        finally:
            call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ReplayClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def event_json(event: pb.ReplayEvent) -> dict[str, Any]:
    """An event as plain JSON: integer timestamps and versions, `value` null for a cleared key."""
    return {
        "txn_id": event.txn_id,
        "commit_ts": event.commit_ts,
        "operations": [
            {
                "key": op.key,
                "value": json_format.MessageToDict(op.value) if op.HasField("value") else None,
                "version": op.version,
            }
            for op in event.operations
        ],
    }
