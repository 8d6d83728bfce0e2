"""What the node port's HTTP/2 pipe costs a gRPC call: unary round trips through the node port vs direct.

The node's grpc.aio server listens on an abstract unix socket; the node port hands it every
connection that opens with the HTTP/2 preface through a byte pipe (``restate_server.web.proxy``).
This starts a node-port listener with the real ``NodeServices`` and a one-method echo service in a
child process on uvloop (as the server runs), then times sequential unary calls from this process
over both paths, and a stream of small messages over both.

Run: ``.venv/bin/python -m bench.grpc_proxy [--calls 5000] [--stream 200000]`` (not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from multiprocessing.connection import Connection

import grpc

_ECHO = "/bench.Echo/Echo"
_STREAM = "/bench.Echo/Stream"


def _identity(data: bytes) -> bytes:
    return data


def _serve(conn: Connection) -> None:
    import uvloop
    from restate_server.node_services import NodeServices
    from restate_server.observability import scrape
    from restate_server.web import serving

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def stream(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]):  # type: ignore[no-untyped-def]
        count = int(request)
        payload = b"x" * 48
        for _ in range(count):
            yield payload

    def register(server: grpc.aio.Server) -> None:
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, _identity, _identity),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, _identity, _identity),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", handlers),))

    async def main() -> None:
        services = NodeServices()
        services.add_servicer(register)
        await services.start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        runner = await serving.serve(
            scrape.node_app(None), "node", "127.0.0.1", port, serving.DEFAULT_LIMITS, services.sniff
        )
        conn.send((f"127.0.0.1:{port}", services.address))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until the parent is done
        await runner.cleanup()
        await services.stop(0)

    uvloop.run(main())


def _unary(target: str, calls: int) -> list[float]:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(_ECHO, request_serializer=_identity, response_deserializer=_identity)
        for _ in range(200):  # warm up: connection, HTTP/2 windows, caches
            call(b"ping")
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call(b"ping")
            times.append(time.perf_counter() - start)
    return times


def _stream(target: str, count: int) -> float:
    with grpc.insecure_channel(target, options=(("grpc.http2.bdp_probe", 0),)) as channel:
        call = channel.unary_stream(_STREAM, request_serializer=_identity, response_deserializer=_identity)
        start = time.perf_counter()
        received = sum(1 for _ in call(str(count).encode()))
        elapsed = time.perf_counter() - start
    assert received == count
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--stream", type=int, default=200_000)
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    server.start()
    node_port, direct = parent.recv()
    try:
        results = {}
        for name, target in (("direct", direct), ("node_port", node_port)):
            times = _unary(target, args.calls)
            results[name] = {
                "unary_median_us": round(statistics.median(times) * 1e6, 1),
                "unary_p99_us": round(sorted(times)[int(len(times) * 0.99)] * 1e6, 1),
                "stream_msgs_per_s": round(_stream(target, args.stream)),
            }
        cost = results["node_port"]["unary_median_us"] - results["direct"]["unary_median_us"]
        results["pipe_cost_unary_median_us"] = round(cost, 1)
        print(json.dumps(results, indent=2))
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
