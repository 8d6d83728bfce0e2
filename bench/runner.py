"""One server's benchmark from start to stop: readiness, registration, scenarios, restart.

The sequence is the same for every server, so the figures compare like with like:

1. start on an empty ``--base-dir``; time until ``/health`` (admin) and ``/restate/health`` (ingress)
   answer; 2. register the h2c deployment and the HTTP/1.1 one; time the first successful call;
3. settle, then idle RSS, idle CPU and the fresh data-directory size; 4. every scenario of both
deployments, each bounded in operations and time; 5. idle RSS and data-directory size after the
runs, how many invocations the server still retains, and the time of a few SQL queries over that
store; 6. ``KILLS`` SIGKILLs while callers keep calling, each restart timed to ready; 7. SIGKILL,
start on the same directory, time to ready and to the first successful call; 8. SIGTERM. RSS is
sampled throughout (peak, and a timeline for the memory chart).

A server that cannot start or register is recorded as such and the run moves on: the harness must
stay usable while this project's server is incomplete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import time
from typing import Any

from bench import load, procs, profile, scenarios
from bench.admin import Admin
from bench.model import Options, ScenarioResult, ServerResult, sql_phase

log = logging.getLogger("bench")

#: Deployment modes: (mode, service-name prefix, service port offset, registration extras).
MODES: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("h2c", "", 0, {}),
    ("http1", "H1", 1, {"use_http_11": True}),
)


#: Bound on the final counter check (1,000 ``get`` calls from 32 clients).
VERIFY_LIMIT_S = 60.0

#: SIGKILLs under load, the seconds between them, and the callers that keep calling meanwhile.
KILLS, KILL_EVERY_S, KILL_LOAD_CALLERS = 6, 2.0, 8


async def _service_seen(port: int, prefix: str) -> int:
    client = load.Client("127.0.0.1", port, 5.0)
    try:
        response = await client.request("GET", f"/bench/seen?prefix={prefix}")
        return int(json.loads(response.body)["count"])
    finally:
        await client.close()


class ServerBench:
    """Runs the whole sequence against one server; see the module docstring."""

    def __init__(
        self,
        spec: procs.ServerSpec,
        version: str,
        service_pids: list[int],
        options: Options,
        repetition: int = 1,
    ) -> None:
        self.spec = spec
        self.options = options
        self.service_pids = service_pids
        self.result = ServerResult(name=spec.name, version=version)
        self.admin = Admin(spec.ports)
        self.base_dir = options.work_dir / f"data-{spec.name}"
        self.log_path = options.work_dir / f"{spec.name}-run{repetition}.log"
        self.server: procs.Running | None = None
        self.sampler: procs.Sampler | None = None
        self._kept_ids: dict[str, str] = {}

    def _sample(self) -> None:
        if self.sampler is not None and self.server is not None and self.server.alive():
            self.sampler.sample()

    def _phase(self, name: str) -> None:
        if self.sampler is not None and self.server is not None and self.server.alive():
            self.sampler.begin(name)
        elif self.sampler is not None:
            self.sampler.phase = name

    async def _enter(self, name: str) -> None:
        """Start phase ``name``. A payload scenario's buffers go back to the OS a second or so after it
        ends (the server's trims): that memory is still the payload's, not the next phase's."""
        if self.sampler is not None and self.sampler.phase == "payload" and name != "payload":
            await self._settle()
        self._phase(name)

    def _cpu(self) -> float:
        assert self.server is not None
        return procs.cpu_seconds(self.server.pid)

    def _service_cpu(self) -> float:
        return sum(procs.cpu_seconds(pid) for pid in self.service_pids)

    async def run(self) -> ServerResult:
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir.mkdir(parents=True)
        self.log_path.write_text("")
        argv = [*self.spec.argv, "--base-dir", str(self.base_dir)]
        spec = dataclasses.replace(self.spec, argv=argv)
        self.server = procs.Running(spec, self.base_dir, self.log_path)
        self.sampler = procs.Sampler(self.server.pid)
        try:
            if await self._start():
                await self._workload()
                await self._restart(spec)
            else:
                self._not_run_all(f"server {self.result.status}")
        finally:
            if self.result.peak_rss is None and self.sampler is not None:
                self._sample()
                self.result.peak_rss = self.sampler.peak or None
            if self.sampler is not None:
                self.result.rss_timeline = self.sampler.timeline
                self.result.peak_rss_by_phase = self.sampler.phase_peaks
            if self.server is not None:
                self.server.stop()
        return self.result

    def _scenarios(self, mode: str, prefix: str, run_id: str) -> list[scenarios.Scenario]:
        target = scenarios.Target(
            mode=mode, prefix=prefix, run_id=run_id, idempotency_keys=self.options.idempotency_keys
        )
        built = scenarios.build(target)
        only = self.options.only
        return [s for s in built if not only or any(word in s.name for word in only)]

    def _not_run_all(self, reason: str) -> None:
        for mode, prefix, _offset, _extras in MODES:
            for scenario in self._scenarios(mode, prefix, "-"):
                self.result.scenarios.append(
                    ScenarioResult(name=scenario.name, mode=mode, status="not run", reason=reason)
                )

    async def _start(self) -> bool:
        assert self.server is not None
        result = self.result
        result.ready_s = await asyncio.to_thread(self.server.wait_ready, 60.0)
        self._sample()
        if result.ready_s is None:
            result.status = "did not start"
            result.notes.append(f"not ready within 60 s; log tail:\n{self.server.log_tail()}")
            return False
        log.info("%s ready in %.2f s", self.spec.name, result.ready_s)
        for url, status in self.server.health_seen.items():
            if not 200 <= status < 300:
                result.notes.append(f"{url} answered {status} (counted as ready: the server answers)")
        for mode, _prefix, offset, extras in MODES:
            uri = f"http://127.0.0.1:{self.options.service_port + offset}"
            try:
                response = await self.admin.call("POST", "/deployments", {"uri": uri, **extras})
                outcome = (
                    "ok"
                    if response.status in (200, 201)
                    else f"HTTP {response.status} {response.body[:200]!r}"
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                outcome = f"{type(e).__name__}: {e}"
            result.registration[mode] = outcome
            log.info("%s register %s: %s", self.spec.name, mode, outcome)
        if all(v != "ok" for v in result.registration.values()):
            result.status = "registration failed"
            return True  # still measure idle figures and restart
        t0 = time.monotonic()
        first = await self.admin.wait_first_call(30.0)
        result.first_call_s = None if first is None else time.monotonic() - t0
        if first is None:
            result.notes.append("no successful Greeter/greet (h2c deployment) within 30 s of registration")
        await self._retention()
        for kind, headers in (("unkeyed", None), ("keyed", {"idempotency-key": f"retention-{time.time()}"})):
            try:
                response = await self.admin.call(
                    "POST", "/Greeter/greet", f"kept-{kind}", admin=False, headers=headers
                )
                self._kept_ids[kind] = response.headers.get("x-restate-id", "")
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                pass
        return True

    async def _retention(self) -> None:
        try:
            response = await self.admin.call("GET", "/services/Greeter")
            body = json.loads(response.body) if response.status == 200 else {}
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            body = {}
        for key in ("idempotency_retention", "journal_retention", "workflow_completion_retention"):
            self.result.retention[key] = str(body.get(key, "n/a"))
        signup: dict[str, Any] = {}
        try:
            response = await self.admin.call("GET", "/services/Signup")
            signup = json.loads(response.body) if response.status == 200 else {}
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        self.result.retention["workflow_completion_retention"] = str(
            signup.get("workflow_completion_retention", "n/a")
        )

    async def _settle(self) -> tuple[int, float]:
        """Idle for ``settle_s``; return (RSS, CPU %) over that time."""
        cpu0, t0 = self._cpu(), time.monotonic()
        end = t0 + self.options.settle_s
        while time.monotonic() < end:
            self._sample()
            await asyncio.sleep(0.2)
        assert self.server is not None
        cpu_pct = 100 * (self._cpu() - cpu0) / (time.monotonic() - t0)
        return procs.rss_bytes(self.server.pid), cpu_pct

    async def _workload(self) -> None:
        result = self.result
        result.idle_rss, result.idle_cpu_pct = await self._settle()
        result.disk_fresh = procs.disk_usage(self.base_dir)
        run_id = f"{self.spec.name}{int(time.time())}"
        planned = [
            (mode, offset, scenario)
            for mode, prefix, offset, _extras in MODES
            for scenario in self._scenarios(mode, prefix, run_id)
        ]
        # the payload scenarios last: what they leave in memory must not count for the others
        planned.sort(key=lambda item: isinstance(item[2], scenarios.Payload))
        for mode, offset, scenario in planned:
            assert self.server is not None
            if not self.server.alive():
                outcome = ScenarioResult(
                    name=scenario.name, mode=mode, status="not run", reason="server crashed earlier"
                )
            elif result.registration.get(mode) != "ok":
                outcome = ScenarioResult(
                    name=scenario.name,
                    mode=mode,
                    status="not run",
                    reason=f"deployment not registered: {result.registration.get(mode)}",
                )
            else:
                await self._enter("payload" if isinstance(scenario, scenarios.Payload) else "scenarios")
                outcome = await self._bounded(scenario, self.options.service_port + offset)
            log.info(
                "%s %s: %s %s",
                self.spec.name,
                outcome.name,
                outcome.status,
                f"{outcome.throughput:.0f}/s" if outcome.ops else outcome.reason[:200],
            )
            result.scenarios.append(outcome)
            if not self.server.alive() and result.status != "crashed":
                result.status = "crashed"
                result.notes.append(f"server exited during {scenario.name}:\n{self.server.log_tail()}")
        if result.status == "crashed":
            return
        await self._enter("idle after")
        result.idle_rss_after, _ = await self._settle()
        result.disk_after = procs.disk_usage(self.base_dir)
        self._phase("sql")
        await self._sql()
        rows = await self.admin.sql("SELECT count(*) AS n FROM sys_invocation")
        if rows:
            result.retained_invocations = int(next(iter(rows[0].values())))
        for kind, invocation_id in self._kept_ids.items():
            try:
                response = await self.admin.call(
                    "GET", f"/restate/invocation/{invocation_id}/output", admin=False
                )
                ok = response.status == 200 and response.body == f'"Hello kept-{kind}!"'.encode()
                result.kept_after_runs[kind] = "kept" if ok else f"HTTP {response.status}"
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                result.kept_after_runs[kind] = type(e).__name__

    async def _bounded(self, scenario: scenarios.Scenario, service_port: int) -> ScenarioResult:
        """``_scenario`` under a watchdog: every phase has its own bound, this one catches the rest."""
        limit = (
            scenario.timeout_s * 4 + self.options.duration_s + self.options.drain_timeout_s + VERIFY_LIMIT_S
        )
        try:
            return await asyncio.wait_for(self._scenario(scenario, service_port), limit)
        except TimeoutError:
            return ScenarioResult(
                name=scenario.name,
                mode=scenario.mode,
                status="failed",
                reason=f"harness watchdog: over {limit:.0f} s",
            )

    async def _probe(self, scenario: scenarios.Scenario) -> ScenarioResult | None:
        """One operation before the measured window; a result when the scenario cannot run."""
        client = load.Client("127.0.0.1", self.spec.ports.ingress, scenario.timeout_s)
        try:
            await scenario.op(client, scenarios.PROBE_INDEX)
        except load.HttpStatusError as e:
            status = "not run" if e.status in scenarios.NOT_IMPLEMENTED else "failed"
            return ScenarioResult(name=scenario.name, mode=scenario.mode, status=status, reason=f"probe: {e}")
        except (load.CheckError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            return ScenarioResult(
                name=scenario.name,
                mode=scenario.mode,
                status="failed",
                reason=f"probe: {type(e).__name__}: {e}",
            )
        finally:
            await client.close()
        return None

    async def _scenario(self, scenario: scenarios.Scenario, service_port: int) -> ScenarioResult:
        sql_pending = f"SELECT count(*) AS n FROM sys_invocation WHERE target = '{scenario.prefix}Greeter/greet' AND status != 'completed'"
        skipped = await self._probe(scenario)
        if skipped is not None:
            return skipped
        ingress = self.spec.ports.ingress
        profiler = None
        if self.options.profile_dir is not None and self.spec.name in self.options.profile_servers:
            assert self.server is not None
            out = self.options.profile_dir / self.spec.name / f"{profile.slug(scenario.name)}.txt"
            profiler = profile.start(self.server.pid, out, self.options.duration_s)
        cpu0, svc0, busy0 = self._cpu(), self._service_cpu(), procs.system_busy_seconds()
        run = await load.run_closed_loop(
            op=scenario.op,
            make_client=lambda: load.Client("127.0.0.1", ingress, scenario.timeout_s),
            concurrency=scenario.concurrency,
            duration_s=self.options.duration_s,
            max_ops=min(self.options.max_ops, scenario.max_ops or self.options.max_ops),
            on_tick=self._sample,
        )
        await asyncio.to_thread(profile.finish, profiler)
        outcome = ScenarioResult(name=scenario.name, mode=scenario.mode, status="ok")
        wall = run.wall_s
        problems: list[str] = []
        if isinstance(scenario, scenarios.Send):
            drained = await self._drain(scenario, service_port)
            outcome.extra["accept_per_s"] = round(run.throughput, 1)
            if drained is None:
                problems.append(f"backlog not drained within {self.options.drain_timeout_s:.0f} s")
            else:
                outcome.extra["drain_s"] = round(drained, 3)
                wall += drained
        cpu1, svc1, busy1 = self._cpu(), self._service_cpu(), procs.system_busy_seconds()
        if isinstance(scenario, scenarios.Send) and "drain_s" in outcome.extra:
            outcome.extra["sql_no_pending_after"] = await self._sql_confirm(sql_pending)
        if isinstance(scenario, scenarios.CounterAdd):
            problems += await self._check_counters(scenario)
        ops = max(run.ops, 1)
        outcome.ops, outcome.errors, outcome.error_samples = run.ops, run.errors, run.error_samples
        outcome.wall_s = round(wall, 3)
        outcome.throughput = run.ops / wall if wall > 0 else 0.0
        p50, p99 = run.percentile(0.5), run.percentile(0.99)
        outcome.p50_ms = None if p50 is None else p50 * 1000
        outcome.p99_ms = None if p99 is None else p99 * 1000
        outcome.server_cpu_ms_per_op = 1000 * (cpu1 - cpu0) / ops
        outcome.server_util = (cpu1 - cpu0) / wall if wall > 0 else None
        outcome.service_cpu_ms_per_op = 1000 * (svc1 - svc0) / ops
        outcome.gen_cpu_ms_per_op = 1000 * run.gen_cpu_s / ops
        outcome.gen_util = run.gen_cpu_s / run.wall_s if run.wall_s > 0 else None
        # CPU the rest of the machine used meanwhile (other users' processes): a skew indicator.
        other = (busy1 - busy0) - (cpu1 - cpu0) - (svc1 - svc0) - run.gen_cpu_s
        outcome.other_util = max(other, 0.0) / wall if wall > 0 else None
        if problems:
            outcome.extra["check_problems"] = problems[:10]
        if run.errors or problems:
            outcome.status = "errors"
            outcome.reason = "; ".join([*run.error_samples[:2], *problems[:3]])
        return outcome

    async def _drain(self, scenario: scenarios.Send, service_port: int) -> float | None:
        """Seconds from the last accepted ``/send`` until the SDK process has run every one of them.

        The same criterion on every server (a side effect in the service), so the figure compares
        like with like whatever introspection a server offers.
        """
        start = time.monotonic()
        end = start + self.options.drain_timeout_s
        while time.monotonic() < end:
            self._sample()
            try:
                seen = await _service_seen(service_port, scenario.mark)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError):
                seen = -1
            if seen >= scenario.accepted:
                return time.monotonic() - start
            await asyncio.sleep(0.05)
        return None

    async def _sql_confirm(self, sql_pending: str) -> str:
        """After the drain: how long until admin SQL shows no pending ``Greeter/greet`` (outside the window)."""
        start = time.monotonic()
        end = start + self.options.drain_timeout_s
        while time.monotonic() < end:
            rows = await self.admin.sql(sql_pending)
            if rows is None:
                return "no SQL"
            if int(next(iter(rows[0].values()), 1)) == 0:
                return f"{time.monotonic() - start:.3f} s"
            await asyncio.sleep(0.1)
        return "still pending"

    async def _check_counters(self, scenario: scenarios.CounterAdd) -> list[str]:
        keys = list(scenario.returned)
        problems: list[str] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        for key in keys:
            queue.put_nowait(key)

        async def checker() -> None:
            client = load.Client("127.0.0.1", self.spec.ports.ingress, 30.0)
            try:
                while not queue.empty():
                    key = queue.get_nowait()
                    try:
                        problem = await scenario.check_key(client, key)
                    except (load.CheckError, OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                        problem = f"key {key}: {type(e).__name__}: {e}"
                    if problem:
                        problems.append(problem)
            finally:
                await client.close()

        try:
            await asyncio.wait_for(
                asyncio.gather(*(checker() for _ in range(min(32, len(keys))))), VERIFY_LIMIT_S
            )
        except TimeoutError:
            problems.append(f"final counter check did not finish within {VERIFY_LIMIT_S:.0f} s")
        if not keys:
            problems.append("no successful add to check")
        return problems

    async def _sql(self) -> None:
        """Time each of ``scenarios.SQL_QUERIES`` (best of ``SQL_TRIES``) on the store the runs left."""
        found = await self.admin.sql(
            "SELECT id FROM sys_invocation WHERE target_handler_name = 'echo' AND journal_size > 1"
            " ORDER BY created_at DESC LIMIT 1"
        )
        payload_id = str(found[0]["id"]) if found else "inv_none"
        for name, template in scenarios.SQL_QUERIES.items():
            query = template.replace("{payload_id}", payload_id)
            self._phase(sql_phase(name))  # its own peak RSS
            best = None
            for _ in range(scenarios.SQL_TRIES):
                started = time.monotonic()
                rows = await self.admin.sql(query, timeout_s=120.0)
                self._sample()
                if rows is None:
                    best = None
                    break
                elapsed = time.monotonic() - started
                best = elapsed if best is None else min(best, elapsed)
            if best is not None:
                self.result.sql_s[name] = round(best, 4)
            log.info("%s sql %s: %s", self.spec.name, name, "failed" if best is None else f"{best:.3f} s")
        self._phase("sql")

    async def _kills_under_load(self, spec: procs.ServerSpec) -> None:
        """SIGKILL the server ``KILLS`` times while callers keep calling; time each restart to ready."""
        stop = asyncio.Event()
        self._phase("kills")
        callers = [
            asyncio.create_task(
                load.keep_calling(self.spec.ports.ingress, "/Greeter/greet", f"k{n}", stop),
                name=f"kill-load-{n}",
            )
            for n in range(KILL_LOAD_CALLERS)
        ]
        try:
            for _ in range(KILLS):
                await asyncio.sleep(KILL_EVERY_S)
                self._sample()
                self._respawn(spec)
                assert self.server is not None
                ready = await asyncio.to_thread(self.server.wait_ready, 60.0)
                if ready is None:
                    self.result.notes.append(
                        f"kill under load: not ready within 60 s\n{self.server.log_tail()}"
                    )
                    return
                self.result.kills_under_load_s.append(round(ready, 3))
        finally:
            stop.set()
            await asyncio.gather(*callers, return_exceptions=True)
        log.info("%s restarts under load: %s", self.spec.name, self.result.kills_under_load_s)

    def _respawn(self, spec: procs.ServerSpec) -> None:
        """SIGKILL the server and start it again on the same data; the sampler follows it."""
        assert self.server is not None
        self.server.kill()
        self.server = procs.Running(spec, self.base_dir, self.log_path)
        if self.sampler is not None:
            self.sampler.follow(self.server.pid)

    async def _restart(self, spec: procs.ServerSpec) -> None:
        assert self.server is not None
        if not self.server.alive():
            return
        self._sample()
        self.result.peak_rss = self.sampler.peak if self.sampler else None
        await self._kills_under_load(spec)
        if not self.server.alive():
            return
        self._respawn(spec)
        assert self.server is not None
        started = self.server.started
        ready = await asyncio.to_thread(self.server.wait_ready, 60.0)
        self.result.restart_ready_s = ready
        if ready is None:
            self.result.notes.append(f"restart: not ready within 60 s\n{self.server.log_tail()}")
            return
        if await self.admin.wait_first_call(60.0) is not None:
            self.result.restart_first_call_s = time.monotonic() - started
        else:
            self.result.notes.append("restart: no successful Greeter/greet within 60 s of ready")
