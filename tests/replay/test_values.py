"""State values as the Replay API shows them: JSON objects as Structs, other JSON wrapped, other bytes base64."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from restate_server.replay import values
from restate_server.storage.state_history import Event, Operation


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (b'{"name": "bob", "tags": ["a"], "n": 2}', {"name": "bob", "tags": ["a"], "n": 2.0}),
        (b"41", {"value": 41.0}),
        (b'"text"', {"value": "text"}),
        (b"null", {"value": None}),
        (b'[1, {"a": true}]', {"value": [1.0, {"a": True}]}),
        (b"\xff\x00binary", {"base64": "/wBiaW5hcnk="}),
        (b"not json", {"base64": "bm90IGpzb24="}),
        (b"", {"base64": ""}),
    ],
    ids=["object", "number", "string", "null", "array", "binary", "text", "empty"],
)
def test_stored_values_become_structs(stored: bytes, shown: dict[str, object]) -> None:
    struct = Struct()
    values.fill_struct(struct, stored)
    assert json_format.MessageToDict(struct) == shown


def test_an_event_keeps_its_operations_in_order_and_leaves_cleared_values_unset() -> None:
    event = Event(
        commit_ts=5,
        lsn=9,
        txn_id="inv_x/3",
        operations=(Operation(key=b"a", value=b"1", version=1), Operation(key=b"b", value=None, version=4)),
    )
    message = values.to_message(event)
    assert (message.txn_id, message.commit_ts) == ("inv_x/3", 5)
    assert [(op.key, op.version, op.HasField("value")) for op in message.operations] == [
        ("a", 1, True),
        ("b", 4, False),
    ]
