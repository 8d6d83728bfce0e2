"""The benchmark scenarios: what one operation sends, what it must get back, what to check after.

Each scenario is a small class holding the bookkeeping its final check needs (the counter values
each key returned, how many ``/send`` calls were accepted). Operations raise ``load.CheckError``
on any unexpected status or body, so a fast but wrong server scores errors, not throughput.

The service names carry the deployment's prefix (``""`` for the h2c deployment, ``"H1"`` for the
HTTP/1.1 one; see ``services.py``), so every scenario runs once per deployment mode.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

from bench import load

#: Statuses that mean "the server does not have this yet": the scenario is reported as not run.
NOT_IMPLEMENTED = frozenset({404, 405, 501})

#: Index used for the probe operation that runs before the measured window.
PROBE_INDEX = 1_000_000_000


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _expect(response: load.Response, status: int, what: str) -> object:
    if response.status != status:
        raise load.HttpStatusError(response.status, response.body, what)
    if not response.body:
        return None
    try:
        return json.loads(response.body)
    except ValueError as e:
        raise load.CheckError(f"{what}: body is not JSON: {response.body[:200]!r}") from e


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Which deployment a scenario talks to, and the run's unique id (fresh keys every run)."""

    mode: str
    prefix: str
    run_id: str
    #: Send a unique ``idempotency-key`` with every service/object call. Upstream's ingress makes one
    #: up for every such call anyway (and so retains each finished call for the idempotency
    #: retention, 1 day); sending one explicitly makes every server do and keep the same.
    idempotency_keys: bool = True


class Scenario:
    """Base: ``op`` is one measured operation, issued by ``concurrency`` closed-loop callers."""

    kind = "base"
    #: Per-request timeout; the closed loop lets in-flight operations finish within it, and the
    #: probe gives up after it (so a server that hangs costs at most this much per scenario).
    timeout_s = 10.0
    #: Operations at most in the measured window (besides ``--max-ops``); None: no own bound.
    max_ops: int | None = None

    def __init__(self, target: Target, concurrency: int) -> None:
        self.prefix = target.prefix
        self.mode = target.mode
        self.run_id = target.run_id
        self.idempotency_keys = target.idempotency_keys
        self.concurrency = concurrency

    @property
    def name(self) -> str:
        return f"{self.kind}-c{self.concurrency} [{self.mode}]"

    async def op(self, client: load.Client, index: int) -> None:
        raise NotImplementedError

    def headers(self, index: int) -> dict[str, str] | None:
        """Request headers for operation ``index``: its idempotency key, unique in the run."""
        if not self.idempotency_keys:
            return None
        return {"idempotency-key": f"{self.run_id}-{self.kind}-{self.concurrency}-{index}"}


class Greet(Scenario):
    kind = "greet"

    async def op(self, client: load.Client, index: int) -> None:
        name = f"g{index}"
        body = _expect(
            await client.request("POST", f"/{self.prefix}Greeter/greet", _json(name), self.headers(index)),
            200,
            "greet",
        )
        if body != f"Hello {name}!":
            raise load.CheckError(f"greet: unexpected body {body!r}")


class CallerGreet(Scenario):
    """A service calling another service (Caller.callGreet -> Greeter.greet)."""

    kind = "caller"

    async def op(self, client: load.Client, index: int) -> None:
        name = f"c{index}"
        path = f"/{self.prefix}Caller/callGreet"
        body = _expect(await client.request("POST", path, _json(name), self.headers(index)), 200, "callGreet")
        if body != f"Hello {name}!":
            raise load.CheckError(f"callGreet: unexpected body {body!r}")


class Sleep(Scenario):
    """``ctx.sleep(100 ms)``: a durable timer per call."""

    kind = "sleep100ms"

    async def op(self, client: load.Client, index: int) -> None:
        body = _expect(
            await client.request("POST", f"/{self.prefix}Sleeper/nap", b"100", self.headers(index)),
            200,
            "nap",
        )
        if body != 100:
            raise load.CheckError(f"nap: unexpected body {body!r}")


class CounterAdd(Scenario):
    """``Counter.add(1)`` spread over ``keys`` object keys; checks the values returned and the totals."""

    kind = "counter"

    def __init__(self, target: Target, concurrency: int, *, keys: int) -> None:
        super().__init__(target, concurrency)
        self.keys = keys
        self.returned: defaultdict[str, list[int]] = defaultdict(list)
        self.failed_ops = 0

    @property
    def name(self) -> str:
        where = "hot-key" if self.keys == 1 else f"{self.keys}-keys"
        return f"counter-{where}-c{self.concurrency} [{self.mode}]"

    def key(self, index: int) -> str:
        # Keys are unique per scenario: the 1,000-key run must not touch the hot key's counter.
        return f"{self.run_id}-k{self.keys}-{index % self.keys}"

    async def op(self, client: load.Client, index: int) -> None:
        key = self.key(index)
        try:
            response = await client.request(
                "POST", f"/{self.prefix}Counter/{key}/add", b"1", self.headers(index)
            )
        except BaseException:
            self.failed_ops += 1
            raise
        body = _expect(response, 200, "add")
        if not isinstance(body, int):
            raise load.CheckError(f"add: unexpected body {body!r}")
        self.returned[key].append(body)

    async def check_key(self, client: load.Client, key: str) -> str | None:
        """None when the key's final value and the values ``add`` returned are consistent."""
        values = sorted(self.returned[key])
        final = _expect(await client.request("POST", f"/{self.prefix}Counter/{key}/get"), 200, "get")
        if self.failed_ops == 0:
            if final != len(values):
                return f"key {key}: get={final!r}, successful adds={len(values)}"
            if values != list(range(1, len(values) + 1)):
                return f"key {key}: add returned {values[:5]}..., not 1..{len(values)}"
        elif not isinstance(final, int) or final < len(values):
            return f"key {key}: get={final!r} < successful adds={len(values)}"
        return None


class Send(Scenario):
    """``/send`` fire-and-forget to Greeter.greet; the harness then waits for the backlog to drain."""

    kind = "send"

    def __init__(self, target: Target, concurrency: int) -> None:
        super().__init__(target, concurrency)
        self.accepted = 0

    @property
    def mark(self) -> str:
        return f"s-{self.run_id}-"

    async def op(self, client: load.Client, index: int) -> None:
        path = f"/{self.prefix}Greeter/greet/send"
        body = _expect(
            await client.request("POST", path, _json(f"{self.mark}{index}"), self.headers(index)), 202, "send"
        )
        if not isinstance(body, dict) or not str(body.get("invocationId", "")).startswith("inv_"):
            raise load.CheckError(f"send: unexpected body {body!r}")
        self.accepted += 1


class SignupWorkflow(Scenario):
    """Workflow: ``run/send`` (ctx.run + durable promise), ``confirm`` (shared handler), then attach."""

    kind = "workflow"

    async def op(self, client: load.Client, index: int) -> None:
        key = f"{self.run_id}-{index}"
        base = f"/{self.prefix}Signup/{key}"
        _expect(await client.request("POST", f"{base}/run/send", _json(f"u{index}")), 202, "run/send")
        _expect(await client.request("POST", f"{base}/confirm", _json(f"c{index}")), 200, "confirm")
        attach = f"/restate/workflow/{self.prefix}Signup/{key}/attach"
        body = _expect(await client.request("GET", attach), 200, "attach")
        if body != f"welcome user-u{index} (c{index})":
            raise load.CheckError(f"workflow: unexpected result {body!r}")


class Payload(Scenario):
    """``Payload.echo`` with a body of ``mib`` MiB: the bytes go through ingress, log, journal, replay
    to the SDK, and back in the response; the echo must equal the body."""

    kind = "payload"
    timeout_s = 120.0
    max_ops = 5

    def __init__(self, target: Target, mib: int) -> None:
        super().__init__(target, 1)
        self.mib = mib
        block = bytes(range(256)) * 4096  # 1 MiB, not all zeros (nothing on the way may shortcut it)
        self.body = block * mib

    @property
    def name(self) -> str:
        return f"payload-{self.mib}MiB-c1 [{self.mode}]"

    def headers(self, index: int) -> dict[str, str] | None:
        keyed = super().headers(index)
        return None if keyed is None else {"idempotency-key": f"{keyed['idempotency-key']}-{self.mib}MiB"}

    async def op(self, client: load.Client, index: int) -> None:
        headers = {"content-type": "application/octet-stream", **(self.headers(index) or {})}
        response = await client.request("POST", f"/{self.prefix}Payload/echo", self.body, headers)
        if response.status != 200:
            raise load.HttpStatusError(response.status, response.body, "echo")
        if response.body != self.body:
            raise load.CheckError(f"echo: {len(response.body)} bytes back for {len(self.body)} sent")


def build(target: Target) -> list[Scenario]:
    """Every scenario for one deployment, in the order they run (``send`` last: it leaves a backlog)."""
    return [
        Greet(target, 1),
        Greet(target, 32),
        CounterAdd(target, 32, keys=1000),
        CounterAdd(target, 32, keys=1),
        SignupWorkflow(target, 32),
        Sleep(target, 32),
        CallerGreet(target, 32),
        Payload(target, 20),
        Payload(target, 30),
        Send(target, 32),
    ]


#: Queries timed after the scenarios (the store then holds every retained call and the big payloads).
SQL_QUERIES = {
    "count(*) sys_invocation": "SELECT count(*) AS n FROM sys_invocation",
    "status, count(*) group by status": "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status",
    "CLI invocations list": (
        "WITH invocations AS (SELECT inv.id, inv.target, inv.status, inv.created_at, inv.pinned_deployment_id,"
        " inv.retry_count AS num_retries, inv.last_failure AS last_failure_message FROM sys_invocation inv"
        " WHERE inv.status != 'completed' ORDER BY inv.created_at DESC LIMIT 100)"
        " SELECT inv.*, dp.id IS NOT NULL AS pinned_deployment_exists"
        " FROM sys_deployment dp RIGHT JOIN invocations inv ON dp.id = inv.pinned_deployment_id"
    ),
    "CLI services status": (
        "SELECT target_service_name, target_handler_name, status, COUNT(1) AS num_invocations,"
        " MIN(created_at) AS oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) AS oldest_invocation"
        " FROM sys_invocation WHERE target_service_name IN ('Greeter', 'Counter')"
        " GROUP BY target_service_name, target_handler_name, status ORDER BY target_handler_name"
    ),
    "journal of the payload calls (join)": (
        "SELECT j.id, j.index, j.entry_type, j.raw_length FROM sys_journal j"
        " JOIN sys_invocation i ON i.id = j.id WHERE i.target_handler_name = 'echo'"
    ),
    # what `restate invocations describe` does: the id first (not timed), then that journal
    "journal of one 30 MiB payload call, with raw": (
        "SELECT index, entry_type, raw FROM sys_journal WHERE id = '{payload_id}' ORDER BY index"
    ),
}
SQL_TRIES = 3
