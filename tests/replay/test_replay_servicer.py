"""The Replay API on a real node port: gRPC and HTTP on one listener, paging, bounds, errors, cancellation.

The servicer reads from a fake `HistorySource` (its positions are (i, i) for event i), so a test can
hold a history of any length and count what the servicer read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import MappingProxyType

import grpc
import httpx
import pytest
import uvloop
from ports import free_port
from prometheus_client import REGISTRY
from restate_server.node_services import NodeServices
from restate_server.observability import scrape
from restate_server.replay import cli, client, replay_pb2 as pb, replay_pb2_grpc
from restate_server.replay.servicer import PAGE, ReplayServicer
from restate_server.replay.source import ObjectRef, Window
from restate_server.schema import model
from restate_server.storage.state_history import Event, Operation, Position
from restate_server.web import serving

DEADLINE = 10.0


class FakeHistory:
    """Events 0..size-1 of every object, event i at position (i, i), setting "n" to i."""

    def __init__(self, size: int, trimmed_through: int | None = None) -> None:
        self.size = size
        self.trimmed_through = trimmed_through
        self.read = 0  # events handed to the servicer

    async def window(self, ref: ObjectRef) -> Window:
        newest = (self.size - 1, self.size - 1) if self.size else None
        return Window(trimmed_through=self.trimmed_through, newest=newest)

    async def page(self, ref: ObjectRef, *, first: Position, last: Position, limit: int) -> list[Event]:
        start = first[0] if first[1] <= first[0] else first[0] + 1
        start = max(start, (self.trimmed_through or -1) + 1)
        end = min(last[0], self.size - 1)
        events = [self._event(i) for i in range(start, min(end + 1, start + limit))]
        self.read += len(events)
        return events

    @staticmethod
    def _event(i: int) -> Event:
        return Event(
            commit_ts=i,
            lsn=i,
            txn_id=f"t{i}",
            operations=(Operation(key=b"n", value=b"%d" % i, version=i + 1),),
        )


class Schema:
    def service(self, name: str) -> model.Service | None:
        types = {"Counter": model.ServiceType.VIRTUAL_OBJECT, "Greeter": model.ServiceType.SERVICE}
        if name not in types:
            return None
        return model.Service(name=name, ty=types[name], handlers=MappingProxyType({}), deployment_id="dp")


@contextlib.asynccontextmanager
async def node_port(history: FakeHistory) -> AsyncIterator[str]:
    """The node port with the Replay servicer and the metrics app, as `node.py` wires them."""
    services = NodeServices()
    services.add_servicer(ReplayServicer(services=Schema(), source=history, num_partitions=4).register)
    await services.start()
    port = free_port()
    runner = await serving.serve(
        scrape.node_app(None), "node", "127.0.0.1", port, serving.DEFAULT_LIMITS, services.sniff
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await services.stop(0)


async def _eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def _replay(address: str, **request: object) -> list[pb.ReplayEvent]:
    async with grpc.aio.insecure_channel(address, options=client.CHANNEL_OPTIONS) as channel:
        stub = replay_pb2_grpc.StateReplayStub(channel)
        call = stub.Replay(pb.ReplayRequest(namespace="Counter", agent_id="k", **request), timeout=DEADLINE)
        return [event async for event in call]


async def test_events_stream_in_order_across_pages_next_to_http() -> None:
    history = FakeHistory(PAGE * 2 + 5)
    async with node_port(history) as address:
        events = await _replay(address)
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://{address}/health")
    assert health.status_code == 200
    assert [e.commit_ts for e in events] == list(range(PAGE * 2 + 5))
    assert events[7].txn_id == "t7"
    assert events[7].operations[0].value["value"] == 7
    assert history.read == PAGE * 2 + 5


async def test_time_bounds_are_inclusive() -> None:
    async with node_port(FakeHistory(50)) as address:
        events = await _replay(address, start_ts=10, end_ts=20)
        assert [e.commit_ts for e in events] == list(range(10, 21))
        assert [e.commit_ts for e in await _replay(address, start_ts=48)] == [48, 49]
        assert [e.commit_ts for e in await _replay(address, end_ts=1)] == [0, 1]


@pytest.mark.parametrize(
    ("namespace", "request_fields", "code", "message"),
    [
        ("Nope", {}, grpc.StatusCode.NOT_FOUND, "service 'Nope' not found"),
        ("Greeter", {}, grpc.StatusCode.INVALID_ARGUMENT, "service 'Greeter' has no keys"),
        (
            "Counter",
            {"start_ts": 9, "end_ts": 3},
            grpc.StatusCode.INVALID_ARGUMENT,
            "start_ts 9 is after end_ts 3",
        ),
        ("Counter", {"start_ts": 4}, grpc.StatusCode.OUT_OF_RANGE, "the oldest available timestamp is 6"),
    ],
    ids=["unknown-service", "service-without-keys", "start-after-end", "trimmed"],
)
async def test_errors_are_status_codes(
    namespace: str, request_fields: dict[str, int], code: grpc.StatusCode, message: str
) -> None:
    async with (
        node_port(FakeHistory(20, trimmed_through=5)) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = replay_pb2_grpc.StateReplayStub(channel)
        call = stub.Replay(pb.ReplayRequest(namespace=namespace, agent_id="k", **request_fields))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [event async for event in call]
    assert caught.value.code() == code
    assert message in (caught.value.details() or "")


async def test_a_trimmed_history_without_a_start_streams_what_is_left() -> None:
    async with node_port(FakeHistory(10, trimmed_through=5)) as address:
        assert [e.commit_ts for e in await _replay(address)] == [6, 7, 8, 9]


async def test_a_cancelled_stream_stops_the_reads() -> None:
    history = FakeHistory(1_000_000)
    async with node_port(history) as address:
        async with grpc.aio.insecure_channel(address, options=client.CHANNEL_OPTIONS) as channel:
            stub = replay_pb2_grpc.StateReplayStub(channel)
            call = stub.Replay(pb.ReplayRequest(namespace="Counter", agent_id="k"))
            first = await call.read()
            assert isinstance(first, pb.ReplayEvent)
            call.cancel()
        await _eventually(
            lambda: REGISTRY.get_sample_value("restate_replay_streams") == 0
        )  # generator closed
        read_at_close = history.read
        await asyncio.sleep(0)
    assert history.read == read_at_close
    assert read_at_close < 200 * PAGE  # what the HTTP/2 window let through, not the whole history


def test_the_servicer_runs_on_uvloop() -> None:
    async def scenario() -> list[int]:
        async with node_port(FakeHistory(3)) as address:
            return [e.commit_ts for e in await _replay(address)]

    assert uvloop.run(scenario()) == [0, 1, 2]


async def test_servicers_are_added_before_the_server_starts() -> None:
    services = NodeServices()
    await services.start()
    try:
        with pytest.raises(RuntimeError, match="before"):
            services.add_servicer(lambda _server: None)
    finally:
        await services.stop(0)


async def test_the_python_client_and_its_json() -> None:
    async with node_port(FakeHistory(5)) as address:
        with client.ReplayClient(address) as replay_client:

            def first_two() -> list[dict[str, object]]:
                events = []
                for event in replay_client.replay(namespace="Counter", agent_id="k", start_ts=1):
                    events.append(client.event_json(event))
                    if len(events) == 2:
                        break  # leaves the loop: the call is cancelled
                return events

            events = await asyncio.to_thread(first_two)
    assert events == [
        {"txn_id": "t1", "commit_ts": 1, "operations": [{"key": "n", "value": {"value": 1.0}, "version": 2}]},
        {"txn_id": "t2", "commit_ts": 2, "operations": [{"key": "n", "value": {"value": 2.0}, "version": 3}]},
    ]


async def test_the_command_prints_json_lines_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    async with node_port(FakeHistory(3)) as address:
        ok = await asyncio.to_thread(cli.main, ["Counter", "k", "--address", address, "--end-ts", "1"])
        failed = await asyncio.to_thread(cli.main, ["Nope", "k", "--address", address])
    out, err = capsys.readouterr()
    assert (ok, failed) == (0, 1)
    assert out.splitlines() == [
        '{"txn_id":"t0","commit_ts":0,"operations":[{"key":"n","value":{"value":0.0},"version":1}]}',
        '{"txn_id":"t1","commit_ts":1,"operations":[{"key":"n","value":{"value":1.0},"version":2}]}',
    ]
    assert err.strip() == "NOT_FOUND: service 'Nope' not found"
