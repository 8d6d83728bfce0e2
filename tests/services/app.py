"""Real restate-sdk services shared by the test suites (the same ones the reference captures used).

``make_app(variant=…)`` builds the endpoint; variants change the manifest so registration tests can
present "a new version" of the same endpoint: ``"v2"`` adds ``Greeter/hello``; ``"counter-service"``
declares ``Counter`` as a plain service (a type change). ``serve.py`` runs it under hypercorn.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate
from restate import Context, ObjectContext, ObjectSharedContext, WorkflowContext, WorkflowSharedContext


def _greeter(variant: str) -> tuple[restate.Service, Any]:
    greeter = restate.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Context, name: str | None) -> str:
        return f"Hello {name}!"

    @greeter.handler()
    async def fail(ctx: Context, name: str) -> str:
        raise restate.TerminalError(f"failed: {name}", status_code=409)

    if variant == "v2":

        @greeter.handler()
        async def hello(ctx: Context, name: str) -> str:
            return f"Hi {name}!"

    return greeter, greet


def _counter_object() -> restate.VirtualObject:
    counter = restate.VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: ObjectContext, delta: int) -> int:
        total = (await ctx.get("count") or 0) + delta
        ctx.set("count", total)
        return total

    @counter.handler(kind="shared")
    async def get(ctx: ObjectSharedContext) -> int:
        return await ctx.get("count") or 0

    return counter


def _counter_service() -> restate.Service:
    counter = restate.Service("Counter")

    @counter.handler()
    async def add(ctx: Context, delta: int) -> int:
        return delta

    return counter


def _signup() -> restate.Workflow:
    signup = restate.Workflow("Signup")

    @signup.main()
    async def run(ctx: WorkflowContext, email: str) -> str:
        ctx.set("status", "waiting")
        code = await ctx.promise("code", type_hint=str).value()
        ctx.set("status", "confirmed")
        return f"{email} confirmed with {code}"

    @signup.handler()
    async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
        await ctx.promise("code", type_hint=str).resolve(code)

    @signup.handler()
    async def status(ctx: WorkflowSharedContext) -> str:
        return await ctx.get("status") or "unknown"

    return signup


def _sleeper() -> restate.Service:
    sleeper = restate.Service("Sleeper")

    @sleeper.handler()
    async def nap(ctx: Context, millis: int) -> int:
        await ctx.sleep(timedelta(milliseconds=millis))
        return millis

    return sleeper


def _caller(greet: Any) -> restate.Service:
    caller = restate.Service("Caller")

    @caller.handler(name="callGreet")
    async def call_greet(ctx: Context, name: str) -> str:
        return await ctx.service_call(greet, arg=name)

    @caller.handler(name="callGreetGeneric")
    async def call_greet_generic(ctx: Context, name: str) -> str:
        raw = await ctx.generic_call("Greeter", "greet", arg=f'"{name}"'.encode())
        return raw.decode().strip('"')

    return caller


def make_app(*, variant: str = "", identity_keys: list[str] | None = None) -> Any:
    """The ASGI endpoint with every test service."""
    greeter, greet = _greeter(variant)
    counter = _counter_service() if variant == "counter-service" else _counter_object()
    services = [greeter, counter, _signup(), _sleeper(), _caller(greet)]
    return restate.app(services=services, identity_keys=identity_keys)


app = make_app()
