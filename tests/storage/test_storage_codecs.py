"""Stored bytes: typed statuses, results and terminals encode exactly as the list forms did.

The hex strings were produced by the server before the types existed; data directories and logs
written by it must keep loading, and new writes must not differ.
"""

from __future__ import annotations

import msgpack
import pytest
from restate_server.log import records as rec
from restate_server.outcomes import WireFormatError
from restate_server.storage.promises import Promise
from restate_server.storage.status import InvocationStatus, Status, peek_status

STATUS_COMPLETED = InvocationStatus(
    status=Status.COMPLETED,
    service="Svc",
    handler="run",
    key="k",
    service_ty="Workflow",
    handler_ty="Workflow",
    created_at=1,
    modified_at=2,
    source=["service", b"\x01" * 24, "Caller/h", None],
    idempotency_key="ik",
    response_sinks=[[b"\x02" * 24, 3]],
    journal_length=4,
    commands=2,
    completed_ids=[1, 2],
    signal_ids=[1],
    signal_names=["n"],
    waiting=rec.Suspended(completions=(1,), signals=(17,), names=("x",)),
    deployment_id="dp_1",
    protocol_version=6,
    completed_at=9,
    completion_retention=10,
    result=rec.Failure(code=571, message="boom"),
)
STATUS_COMPLETED_HEX = (
    "dc001ea9636f6d706c65746564a3537663a372756ea16ba8576f726b666c6f77a8576f726b666c6f77010294a773657276696365c4180101"
    "01010101010101010101010101010101010101010101a843616c6c65722f68c0a2696b9192c4180202020202020202020202020202020202"
    "02020202020202030402920102910191a16e939101911191a178a464705f3106c0c0c0c0090a0093a76661696c757265cd023ba4626f6f6d"
    "c0c200"
)
STATUS_SUSPENDED = InvocationStatus(
    status=Status.SUSPENDED,
    service="S",
    handler="h",
    key=None,
    service_ty="Service",
    handler_ty=None,
    created_at=1,
    modified_at=2,
    source=["ingress", None, None, None],
    waiting=rec.Suspended(completions=(1, 2)),
    result=rec.Value(content=b"ok"),
)
STATUS_SUSPENDED_HEX = (
    "dc001ea973757370656e646564a153a168c0a753657276696365c0010294a7696e6772657373c0c0c0c0900000909090939201029090c0c0"
    "c0c0c0c0c0000092a576616c7565c4026f6bc0c200"
)
INV, OTHER = b"\x03" * 24, b"\x04" * 24
RECORDS: list[tuple[str, rec.Record, str]] = [
    (
        "effect-end",
        rec.InvokerEffect(
            invocation_id=INV,
            first_command_index=1,
            entries=[(0x401, 0, b"\x0a\x00")],
            pin=("dp_1", 6),
            terminal=rec.Ended(),
            now=5,
            epoch=2,
        ),
        "9a0302c0c418030303030303030303030303030303030303030303030303019193cd040100c4020a0092a464705f310691a3656e6405c0",
    ),
    (
        "effect-suspend",
        rec.InvokerEffect(
            invocation_id=INV,
            first_command_index=1,
            entries=[],
            terminal=rec.Suspended(completions=(1,), signals=(17,), names=("n",)),
            now=5,
        ),
        "9a0300c0c4180303030303030303030303030303030303030303030303030190c094a773757370656e649101911191a16e05c0",
    ),
    (
        "effect-kill",
        rec.InvokerEffect(
            invocation_id=INV,
            first_command_index=1,
            entries=[],
            terminal=rec.Killed(code=500, message="x"),
            now=5,
        ),
        "9a0300c0c4180303030303030303030303030303030303030303030303030190c093a46b696c6ccd01f4a17805c0",
    ),
    (
        "effect-pause",
        rec.InvokerEffect(
            invocation_id=INV,
            first_command_index=1,
            entries=[],
            terminal=rec.Paused(code=500, message="y"),
            now=5,
        ),
        "9a0300c0c4180303030303030303030303030303030303030303030303030190c093a57061757365cd01f4a17905c0",
    ),
    (
        "response-value",
        rec.InvocationResponse(
            invocation_id=OTHER, completion_id=3, result=rec.Value(content=b"v"), dedup=(1, 7)
        ),
        "970500920107c4180404040404040404040404040404040404040404040404040392a576616c7565c40176cd800d",
    ),
    (
        "response-failure",
        rec.InvocationResponse(
            invocation_id=OTHER, completion_id=3, result=rec.Failure(code=409, message="killed")
        ),
        "970500c0c4180404040404040404040404040404040404040404040404040393a76661696c757265cd0199a66b696c6c6564cd800d",
    ),
    (
        "signal-void",
        rec.NotifySignal(
            invocation_id=OTHER, signal_index=17, signal_name=None, result=rec.Void(), submit_request=4
        ),
        "980600c0c41804040404040404040404040404040404040404040404040411c091a4766f696404",
    ),
    (
        "signal-named",
        rec.NotifySignal(
            invocation_id=OTHER, signal_index=None, signal_name="s", result=rec.Value(content=b"")
        ),
        "980600c0c418040404040404040404040404040404040404040404040404c0a17392a576616c7565c400c0",
    ),
    (
        "truncate-outbox",
        rec.TruncateOutbox(up_to_seq=300, epoch=2),
        "940c02c0cd012c",
    ),  # [12, epoch, dedup, seq]
]


@pytest.mark.parametrize(
    ("st", "golden"),
    [(STATUS_COMPLETED, STATUS_COMPLETED_HEX), (STATUS_SUSPENDED, STATUS_SUSPENDED_HEX)],
    ids=["completed", "suspended"],
)
def test_status_rows_keep_their_bytes(st: InvocationStatus, golden: str) -> None:
    assert st.encode().hex() == golden
    decoded = InvocationStatus.decode(bytes.fromhex(golden))
    assert decoded == st
    assert type(decoded.status) is Status
    assert peek_status(bytes.fromhex(golden)) == st.status


@pytest.mark.parametrize(
    ("record", "golden"), [(r, g) for _, r, g in RECORDS], ids=[n for n, _, _ in RECORDS]
)
def test_records_keep_their_bytes(record: rec.Record, golden: str) -> None:
    assert rec.encode(record).hex() == golden
    assert rec.decode(bytes.fromhex(golden)) == record


def test_promise_rows_keep_their_map_form() -> None:
    from restate_server.storage import promises

    class _Txn:
        def __init__(self) -> None:
            self.rows: dict[bytes, bytes] = {}

        def put(self, key: bytes, value: bytes) -> None:
            self.rows[key] = value

        def get(self, key: bytes) -> bytes | None:
            return self.rows.get(key)

    txn = _Txn()
    promises.put(txn, 0, "W", "k", "p", Promise(result=rec.Value(content=b"x")))  # type: ignore[arg-type]
    promises.put(txn, 0, "W", "k", "q", Promise(waiters=[(b"\x05" * 24, 2)]))  # type: ignore[arg-type]
    rows = list(txn.rows.values())
    assert rows[0].hex() == "82a6726573756c7492a576616c7565c40178a77761697465727390"
    assert msgpack.unpackb(rows[1]) == {"result": None, "waiters": [[b"\x05" * 24, 2]]}
    assert promises.get(txn, 0, "W", "k", "q") == Promise(waiters=[(b"\x05" * 24, 2)])  # type: ignore[arg-type]


def test_results_and_terminals_round_trip_and_reject_other_shapes() -> None:
    for result in (rec.Value(content=b"v"), rec.Failure(code=1, message="m"), rec.Void()):
        assert rec.result_from_wire(rec.result_to_wire(result)) == result
    for wire in (["value", "text"], ["failure", "1", "m"], ["nothing"], []):
        with pytest.raises(WireFormatError):
            rec.result_from_wire(wire)
    with pytest.raises(WireFormatError):
        rec.terminal_from_wire(["suspend", [1], [2]])


@pytest.mark.parametrize(
    ("name", "before_events"),
    [
        (
            "effect-end",
            "990302c0c418030303030303030303030303030303030303030303030303019193cd040100c4020a0092a464705f310691a3656e6405",
        ),
        (
            "effect-kill",
            "990300c0c4180303030303030303030303030303030303030303030303030190c093a46b696c6ccd01f4a17805",
        ),
    ],
    ids=["end", "kill"],
)
def test_effects_logged_before_journal_events_decode_the_same(name: str, before_events: str) -> None:
    """`InvokerEffect.event` was appended later; effects logged without it read as having none."""
    (record,) = [r for n, r, _ in RECORDS if n == name]
    assert rec.decode(bytes.fromhex(before_events)) == record
