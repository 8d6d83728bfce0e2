"""What a benchmark run produces: options in, per-server and per-scenario results out.

Plain dataclasses, shared by the runner (which fills them), the aggregation over repeated runs and
the report (which reads them); kept apart so none of those imports another's machinery.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass(kw_only=True)
class Options:
    duration_s: float
    max_ops: int
    drain_timeout_s: float
    settle_s: float
    service_port: int
    work_dir: Path
    only: list[str] | None = None
    idempotency_keys: bool = True
    #: Where py-spy profiles go (``--profile``), and of which servers; None: no profiling.
    profile_dir: Path | None = None
    profile_servers: tuple[str, ...] = ("ours",)


@dataclasses.dataclass(kw_only=True)
class ScenarioResult:
    name: str
    mode: str
    status: str  # "ok", "errors", "not run", "failed"
    reason: str = ""
    ops: int = 0
    errors: int = 0
    error_samples: list[str] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    throughput: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_ms_per_op: float | None = None
    service_cpu_ms_per_op: float | None = None
    gen_cpu_ms_per_op: float | None = None
    gen_util: float | None = None
    server_util: float | None = None
    other_util: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(kw_only=True)
class ServerResult:
    name: str
    version: str
    status: str = "ok"
    notes: list[str] = dataclasses.field(default_factory=list)
    ready_s: float | None = None
    registration: dict[str, str] = dataclasses.field(default_factory=dict)
    first_call_s: float | None = None
    idle_rss: int | None = None
    idle_cpu_pct: float | None = None
    peak_rss: int | None = None
    idle_rss_after: int | None = None
    disk_fresh: int | None = None
    disk_after: int | None = None
    retention: dict[str, str] = dataclasses.field(default_factory=dict)
    retained_invocations: int | None = None
    #: "unkeyed"/"keyed" -> what ``/restate/invocation/<id>/output`` of a call made at the start
    #: answered after the runs ("kept" = 200, else the status): is a finished call retained?
    kept_after_runs: dict[str, str] = dataclasses.field(default_factory=dict)
    restart_ready_s: float | None = None
    restart_first_call_s: float | None = None
    #: Seconds from spawn to ready after each SIGKILL while a load generator keeps calling.
    kills_under_load_s: list[float] = dataclasses.field(default_factory=list)
    #: Query name -> seconds of ``POST /query`` (JSON), run on the store the scenarios left behind.
    sql_s: dict[str, float] = dataclasses.field(default_factory=dict)
    #: Peak RSS in each phase (kernel high-water mark): "scenarios" (all but payload), "payload",
    #: "sql: <query>" for each SQL query (see `sql_phase`), "sql" (the checks after them), "kills".
    peak_rss_by_phase: dict[str, int] = dataclasses.field(default_factory=dict)
    #: (seconds since the server started, tree RSS in MB) about once a second, over the whole run.
    rss_timeline: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    scenarios: list[ScenarioResult] = dataclasses.field(default_factory=list)


def sql_phase(query: str) -> str:
    """The phase one of the SQL queries runs in: each has its own peak RSS."""
    return f"sql: {query}"
