"""restate-sdk services for the server's integration tests (durability, state, cross-partition calls).

Side effects that must happen once are recorded as lines in the file named by $SIDE_EFFECTS_FILE,
so a test can count them across SDK process restarts.
"""

from __future__ import annotations

import os
from datetime import timedelta

import restate
from restate import Context, ObjectContext, ObjectSharedContext

durable = restate.Service("Durable")


def _record(name: str) -> str:
    with open(os.environ["SIDE_EFFECTS_FILE"], "a") as f:
        f.write(name + "\n")
    return f"effect-{name}"


@durable.handler()
async def run_then_sleep(ctx: Context, name: str) -> str:
    value = await ctx.run_typed("side-effect", _record, name=name)
    _record(f"journaled {name}")  # outside ctx.run: written again by every replay
    await ctx.sleep(timedelta(seconds=2))
    return value


@durable.handler()
async def sleep_ms(ctx: Context, millis: int) -> int:
    await ctx.sleep(timedelta(milliseconds=millis))
    return millis


@durable.handler()
async def record(ctx: Context, name: str) -> str:
    return _record(name)


@durable.handler()
async def record_event(ctx: Context, name: str) -> str:
    """Records the value and the Kafka headers the server attached (subscription tests)."""
    headers = ctx.request().headers
    fields = ("kafka.topic", "kafka.partition", "kafka.offset", "kafka.key", "restate.subscription.id")
    line = " ".join([name, *(f"{f}={headers.get(f)}" for f in fields)])
    return await ctx.run_typed("record", _record, name=line)


@durable.handler()
async def await_awakeable(ctx: Context) -> str:
    """Publishes an awakeable id as a side effect, then waits for someone to resolve it."""
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    await ctx.run_typed("publish", _record, name=f"awakeable {awakeable_id}")
    return f"resolved with {await promise}"


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    total = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", total)
    return total


@counter.handler()
async def slow_add(ctx: ObjectContext, delta: int) -> list[int]:
    """Reads, sleeps, then writes: concurrent runs on one key would lose updates."""
    before = await ctx.get("count", type_hint=int) or 0
    await ctx.sleep(timedelta(milliseconds=300))
    ctx.set("count", before + delta)
    return [before, before + delta]


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


@counter.handler()
async def append(ctx: ObjectContext, value: int) -> int:
    """Adds `value` and remembers the order values arrived in (Kafka per-key order tests)."""
    seen = await ctx.get("seen", type_hint=list[int]) or []
    seen.append(value)
    ctx.set("seen", seen)
    total = (await ctx.get("count", type_hint=int) or 0) + value
    ctx.set("count", total)
    return total


@counter.handler(kind="shared")
async def seen(ctx: ObjectSharedContext) -> list[int]:
    return await ctx.get("seen", type_hint=list[int]) or []


@counter.handler()
async def keys(ctx: ObjectContext) -> list[str]:
    return sorted(await ctx.state_keys())


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    ctx.clear_all()


lazy = restate.VirtualObject("LazyCounter", enable_lazy_state=True)


@lazy.handler(name="add")
async def lazy_add(ctx: ObjectContext, delta: int) -> int:
    total = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", total)
    return total


@lazy.handler(name="keys")
async def lazy_keys(ctx: ObjectContext) -> list[str]:
    return sorted(await ctx.state_keys())


caller = restate.Service("Caller")


@caller.handler()
async def add_to_many(ctx: Context, keys: list[str]) -> list[int]:
    """Calls Counter/add on several keys (different partitions) and collects the results."""
    results = []
    for key in keys:
        results.append(await ctx.object_call(add, key=key, arg=1))
    return results


@caller.handler()
async def send_to_many(ctx: Context, keys: list[str]) -> str:
    for key in keys:
        ctx.object_send(add, key=key, arg=10)
    return "sent"


@caller.handler()
async def greet_via(ctx: Context, name: str) -> str:
    return await ctx.service_call(greet, arg=name)


@caller.handler()
async def call_missing(ctx: Context, name: str) -> str:
    """Calls a service nobody registered (upstream fails the attempt with RT0018 and retries)."""
    answer = await ctx.generic_call("Nowhere", "go", arg=name.encode())
    return answer.decode()


@caller.handler()
async def await_sleeper(ctx: Context, millis: int) -> int:
    """Waits for a child that sleeps: killing this invocation must kill the child too."""
    return await ctx.service_call(sleep_ms, arg=millis)


greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str | None) -> str:
    return f"Hello {name}!"


@greeter.handler()
async def header(ctx: Context, name: str) -> str | None:
    return ctx.request().headers.get(name)


@greeter.handler()
async def fail(ctx: Context, name: str) -> str:
    raise restate.TerminalError(f"failed: {name}", status_code=409)


@greeter.handler()
async def flaky(ctx: Context, name: str) -> str:
    """Always fails with a retryable error: the server retries it and records the failure."""
    raise ValueError(f"flaky failure of {name}")


@greeter.handler()
async def fail_with(ctx: Context, code: int) -> str:
    raise restate.TerminalError(f"failed with {code}", status_code=code)


@greeter.handler()
async def attempt_header(ctx: Context, name: str) -> str | None:
    """A header of the request the server's invoker sent for this attempt (e.g. `traceparent`)."""
    return ctx.request().attempt_headers.get(name)


_flaky_once_attempts: dict[str, int] = {}


@greeter.handler()
async def flaky_once(ctx: Context, name: str) -> str:
    """Fails its first attempt with a retryable error, then answers: one retry, observably."""
    seen = _flaky_once_attempts[ctx.request().id] = _flaky_once_attempts.get(ctx.request().id, 0) + 1
    if seen == 1:
        raise RuntimeError("the first attempt fails")
    return f"Hello {name}!"


app = restate.app([durable, counter, lazy, caller, greeter])
