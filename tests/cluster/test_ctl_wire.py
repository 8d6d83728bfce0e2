"""Unary gRPC over h2 for `restatectl`, and the node-port router, against real clients: an h2 client that
opens a connection the way tonic does (request right behind the preface, zstd-compressed), and grpcio
(which waits for the server's SETTINGS and announces itself in its own)."""

from __future__ import annotations

import asyncio
import gzip
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
import zstandard
from google.protobuf import empty_pb2
from restate_server.cluster.ctl import (
    common_pb2 as common,
    node_ctl_svc_pb2 as nodectl,
    node_ctl_svc_pb2_grpc,
    wire,
)

GET_IDENT = "/restate.node_ctl_svc.NodeCtlSvc/GetIdent"
GET_METADATA = "/restate.node_ctl_svc.NodeCtlSvc/GetMetadata"


async def _ident(_request: empty_pb2.Empty) -> nodectl.IdentResponse:
    return nodectl.IdentResponse(status=common.ALIVE, cluster_name="test-cluster", roles=["admin"])


async def _refuse(request: nodectl.GetMetadataRequest) -> nodectl.GetMetadataResponse:
    raise wire.GrpcError(wire.FAILED_PRECONDITION, f"kind {request.kind} refusé: 100%")


METHODS = {
    GET_IDENT: wire.unary(empty_pb2.Empty, _ident),
    GET_METADATA: wire.unary(nodectl.GetMetadataRequest, _refuse),
}


@dataclass
class Node:
    """A node port whose every connection is served by `wire` (the paths the router saw are kept)."""

    port: int = 0
    routed: list[str] = field(default_factory=list)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    seen = Node()

    def choose(path: str, opening: bytes) -> asyncio.Protocol:
        seen.routed.append(path)
        return wire.GrpcConnection(METHODS, lambda _c: None)

    server = await asyncio.get_running_loop().create_server(lambda: wire.Router(choose), "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    yield seen
    server.close()
    await server.wait_closed()


@dataclass
class Answer:
    headers: dict[str, str]
    body: bytes
    trailers: dict[str, str]


async def call_like_tonic(port: int, path: str, message: bytes, encoding: str = "zstd") -> Answer:
    """One unary call, written in one go as tonic does: preface, SETTINGS, HEADERS and the (compressed) DATA."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(
        stream,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"127.0.0.1:{port}"),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", encoding),
        ],
    )
    match encoding:
        case "zstd":  # a streaming encoder writes no content size, as tonic's does
            payload, flag = zstandard.ZstdCompressor(write_content_size=False).compress(message), 1
        case "gzip":
            payload, flag = gzip.compress(message), 1
        case _:
            payload, flag = message, 0
    conn.send_data(stream, struct.pack(">BI", flag, len(payload)) + payload, end_stream=True)
    writer.write(conn.data_to_send())
    answer = Answer(headers={}, body=b"", trailers={})
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout=5)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                match event:
                    case h2.events.ResponseReceived(headers=headers):
                        answer.headers = dict(headers)
                    case h2.events.TrailersReceived(headers=headers):
                        answer.trailers = dict(headers)
                    case h2.events.DataReceived(data=chunk, flow_controlled_length=length):
                        answer.body += chunk
                        conn.acknowledge_received_data(length, stream)
                    case h2.events.StreamEnded():
                        return answer
            writer.write(conn.data_to_send())
    finally:
        writer.close()


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "identity"])
async def test_a_tonic_style_call_is_routed_by_its_path_and_answered(node: Node, encoding: str) -> None:
    answer = await call_like_tonic(node.port, GET_IDENT, b"", encoding)
    assert node.routed == [GET_IDENT]
    assert answer.headers[":status"] == "200"
    assert answer.headers["content-type"] == "application/grpc"
    assert answer.trailers == {"grpc-status": "0"}
    flag, length = struct.unpack_from(">BI", answer.body)
    assert (flag, length) == (0, len(answer.body) - 5)
    ident = nodectl.IdentResponse.FromString(answer.body[5:])
    assert (ident.status, ident.cluster_name, list(ident.roles)) == (common.ALIVE, "test-cluster", ["admin"])


async def test_errors_are_trailers_only_with_an_escaped_message(node: Node) -> None:
    request = nodectl.GetMetadataRequest(kind=common.LOGS).SerializeToString()
    answer = await call_like_tonic(node.port, GET_METADATA, request)
    assert answer.body == b""
    assert answer.headers["grpc-status"] == str(wire.FAILED_PRECONDITION)
    assert answer.headers["grpc-message"] == "kind 4 refus%C3%A9: 100%25"


async def test_an_unknown_method_is_unimplemented(node: Node) -> None:
    answer = await call_like_tonic(node.port, "/restate.cluster_ctrl.ClusterCtrlSvc/SealChain", b"")
    assert answer.headers["grpc-status"] == str(wire.UNIMPLEMENTED)


async def test_grpcio_is_recognised_by_its_settings_and_served_with_gzip(node: Node) -> None:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{node.port}", compression=grpc.Compression.Gzip
    ) as channel:
        stub = node_ctl_svc_pb2_grpc.NodeCtlSvcStub(channel)
        ident = await stub.GetIdent(empty_pb2.Empty(), timeout=5)
        assert ident.cluster_name == "test-cluster"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetMetadata(nodectl.GetMetadataRequest(kind=common.LOGS), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == "kind 4 refusé: 100%"
    assert node.routed == [""]  # decided on the opening SETTINGS: grpc's C core waits for ours


async def test_a_client_that_waits_for_the_server_goes_to_the_fallback(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "ROUTE_WAIT", 0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()  # preface and SETTINGS only, then wait
    writer.write(conn.data_to_send())
    events = conn.receive_data(await asyncio.wait_for(reader.read(65536), timeout=5))
    assert any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
    assert node.routed == [""]
    writer.close()


@pytest.mark.parametrize(
    ("opening", "path"),
    [
        (wire.PREFACE[:10], None),
        (wire.PREFACE, None),
        (wire.PREFACE + b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64", None),
        (wire.PREFACE + b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\xfe\x03\x00\x00\x00\x01", ""),
    ],
    ids=["partial-preface", "preface", "settings", "grpc-core-settings"],
)
def test_first_path_waits_for_what_it_needs(opening: bytes, path: str | None) -> None:
    assert wire.first_path(opening) == path


def test_first_path_refuses_what_is_not_http2() -> None:
    with pytest.raises(ValueError, match="not an HTTP/2 preface"):
        wire.first_path(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 20)


@pytest.mark.parametrize(
    ("body", "encoding", "error"),
    [
        (b"\x00\x00\x00", "identity", wire.INTERNAL),
        (b"\x00\x00\x00\x00\x05ab", "identity", wire.INTERNAL),
        (b"\x00\x00\x00\x00\x00" * 2, "identity", wire.INTERNAL),
        (b"\x01\x00\x00\x00\x02ab", "br", wire.UNIMPLEMENTED),
        (b"\x01\x00\x00\x00\x02ab", "zstd", wire.INTERNAL),
    ],
    ids=["short-prefix", "short-message", "two-messages", "unknown-compression", "bad-zstd"],
)
def test_malformed_requests_get_a_status(body: bytes, encoding: str, error: int) -> None:
    with pytest.raises(wire.GrpcError) as failed:
        wire.decode_request(body, encoding)
    assert failed.value.code == error
