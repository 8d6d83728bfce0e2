"""State values as the Replay API shows them: a `google.protobuf.Struct` for every stored value.

A JSON object becomes the Struct itself, any other JSON value is wrapped as `{"value": …}`, and bytes
that are not JSON (or that a Struct cannot hold) as `{"base64": "…"}`. JSON numbers become doubles,
as Struct only has those.
"""

from __future__ import annotations

import base64
import json

from google.protobuf.struct_pb2 import Struct

from restate_server.replay import replay_pb2 as pb
from restate_server.storage.state_history import Event


def fill_struct(struct: Struct, value: bytes) -> None:
    """Write the Struct form of a stored state value into `struct`."""
    try:
        document = json.loads(value)
        struct.update(document if isinstance(document, dict) else {"value": document})
    except (ValueError, TypeError, RecursionError):  # not JSON, or nothing a Struct can hold
        struct.Clear()
        struct.update({"base64": base64.b64encode(value).decode()})


def to_message(event: Event) -> pb.ReplayEvent:
    """The wire form of one history event."""
    message = pb.ReplayEvent(txn_id=event.txn_id, commit_ts=event.commit_ts)
    for operation in event.operations:
        out = message.operations.add(key=operation.key.decode(errors="replace"), version=operation.version)
        if operation.value is not None:
            fill_struct(out.value, operation.value)
    return message
