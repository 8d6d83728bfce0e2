"""Turning results into the side-by-side table (terminal and ``RESULTS.md``) and the JSON record.

Every figure is shown for this project's server ("ours") and upstream, with the ratio ours/upstream,
and the issue's target next to it where the issue sets one. ``RESULTS.md`` is regenerated on every
run; anything below ``KEEP_MARKER`` in the existing file (hand-written analysis, profiles) is kept.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.model import ScenarioResult, ServerResult, sql_phase

KEEP_MARKER = "<!-- everything below this line is kept when the harness rewrites this file -->"

OURS, UPSTREAM = "ours", "upstream"


def machine_info(upstream_version: str, ours_version: str) -> dict[str, str]:
    """The machine and software versions the figures were measured on."""
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "n/a"

    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import os

    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "restate-sdk": version("restate-sdk"),
        "hypercorn": version("hypercorn"),
        "uvloop": version("uvloop"),
        "upstream restate-server": upstream_version,
        "ours (restate-py-server)": ours_version,
    }


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f} MB"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _ratio(ours: float | None, upstream: float | None) -> str:
    if ours is None or upstream is None or upstream == 0 or (ours == 0 and upstream == 0):
        return "-"
    return f"{ours / upstream:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows
    ]
    return lines


def _server_rows(results: dict[str, ServerResult]) -> list[list[str]]:
    ours, up = results.get(OURS), results.get(UPSTREAM)
    figures: list[tuple[str, Callable[[ServerResult], Any], Callable[[Any], str], str]] = [
        ("start to ready (health endpoints)", lambda r: r.ready_s, _s, ""),
        ("registration to first greet call", lambda r: r.first_call_s, _s, ""),
        ("RSS idle (after registration)", lambda r: r.idle_rss, _mb, "≤ 100 MB"),
        ("RSS peak (whole run, kernel high-water mark)", lambda r: r.peak_rss, _mb, ""),
        (
            "RSS peak without the payload scenarios",
            lambda r: max((v for k, v in r.peak_rss_by_phase.items() if k != "payload"), default=None),
            _mb,
            "≤ 300 MB",
        ),
        (
            "RSS peak during the 20/30 MiB payload scenarios",
            lambda r: r.peak_rss_by_phase.get("payload"),
            _mb,
            "",
        ),
        ("RSS peak during the SQL queries", _sql_peak, _mb, ""),
        ("RSS idle after the runs", lambda r: r.idle_rss_after, _mb, "≤ 150 MB"),
        ("CPU while idle", lambda r: r.idle_cpu_pct, lambda v: "-" if v is None else f"{v:.1f} %", ""),
        ("data dir fresh (after registration)", lambda r: r.disk_fresh, _mb, "≤ 10 MB"),
        ("data dir after the runs", lambda r: r.disk_after, _mb, ""),
        (
            "invocations retained after the runs (SQL)",
            lambda r: r.retained_invocations,
            lambda v: "-" if v is None else f"{v:,}",
            "",
        ),
        ("restart (SIGKILL) to ready", lambda r: r.restart_ready_s, _s, ""),
        (
            "longest restart to ready, SIGKILLs under load",
            lambda r: max(r.kills_under_load_s) if r.kills_under_load_s else None,
            _s,
            "≤ 0.5 s",
        ),
        (
            "median restart to ready, SIGKILLs under load",
            lambda r: statistics.median(r.kills_under_load_s) if r.kills_under_load_s else None,
            _s,
            "",
        ),
        ("restart (SIGKILL) to first greet call", lambda r: r.restart_first_call_s, _s, ""),
    ]
    rows = []
    for label, get, fmt, target in figures:
        a = get(ours) if ours else None
        b = get(up) if up else None
        rows.append([label, fmt(a), fmt(b), _ratio(a, b), target])
    for kind in ("unkeyed", "keyed"):
        rows.append(
            [
                f"{kind} call from the start still retrievable after the runs (/restate/invocation/<id>/output)",
                ours.kept_after_runs.get(kind, "-") if ours else "-",
                up.kept_after_runs.get(kind, "-") if up else "-",
                "",
                "",
            ]
        )
    for key in ("idempotency_retention", "journal_retention", "workflow_completion_retention"):
        rows.append(
            [
                key + " (GET /services)",
                ours.retention.get(key, "-") if ours else "-",
                up.retention.get(key, "-") if up else "-",
                "",
                "same on both",
            ]
        )
    return rows


def _cell(result: ScenarioResult | None, value: str) -> str:
    if result is None:
        return "-"
    if result.status in ("not run", "failed"):
        return result.status
    return value + (" (errors)" if result.status == "errors" else "")


def _scenario_rows(results: dict[str, ServerResult]) -> tuple[list[list[str]], list[list[str]]]:
    by_name: dict[str, dict[str, ScenarioResult]] = {}
    for server, result in results.items():
        for scenario in result.scenarios:
            by_name.setdefault(scenario.name, {})[server] = scenario
    main_rows, cost_rows = [], []
    metrics: list[
        tuple[str, Callable[[ScenarioResult], float | None], Callable[[float | None], str], str]
    ] = [
        ("throughput", lambda s: s.throughput if s.ops else None, _num, "≥ 1.0x"),
        ("p50 latency", lambda s: s.p50_ms, _ms, ""),
        ("p99 latency", lambda s: s.p99_ms, _ms, ""),
        ("server CPU per op", lambda s: s.server_cpu_ms_per_op if s.ops else None, _ms, "≤ 0.5x"),
    ]
    for name, pair in by_name.items():
        ours, up = pair.get(OURS), pair.get(UPSTREAM)
        for label, get, fmt, target in metrics:
            a = get(ours) if ours and ours.ops else None
            b = get(up) if up and up.ops else None
            if label == "p50 latency" and name.startswith(("greet-c1 ", "payload-")):
                target = "≤ 1.0x"
            rows_target = target
            main_rows.append([name, label, _cell(ours, fmt(a)), _cell(up, fmt(b)), _ratio(a, b), rows_target])
        for server, s in (("ours", ours), ("upstream", up)):
            if s is None or not s.ops:
                continue
            extra = ", ".join(f"{k}={v}" for k, v in s.extra.items() if k != "check_problems")
            cost_rows.append(
                [
                    name,
                    server,
                    f"{s.ops:,}",
                    str(s.errors),
                    f"{s.wall_s:.1f} s",
                    _ms(s.gen_cpu_ms_per_op),
                    "-" if s.gen_util is None else f"{100 * s.gen_util:.0f} %",
                    _ms(s.service_cpu_ms_per_op),
                    "-" if s.server_util is None else f"{100 * s.server_util:.0f} %",
                    "-" if s.other_util is None else f"{100 * s.other_util:.0f} %",
                    extra,
                ]
            )
    return main_rows, cost_rows


def _sql_peak(result: ServerResult) -> int | None:
    return max((v for k, v in result.peak_rss_by_phase.items() if k.startswith("sql")), default=None)


def _sql_rows(results: dict[str, ServerResult]) -> list[list[str]]:
    ours, up = results.get(OURS), results.get(UPSTREAM)
    names = dict.fromkeys([*(ours.sql_s if ours else {}), *(up.sql_s if up else {})])
    rows = []
    for name in names:
        a = ours.sql_s.get(name) if ours else None
        b = up.sql_s.get(name) if up else None
        peaks = [r.peak_rss_by_phase.get(sql_phase(name)) if r else None for r in (ours, up)]
        rows.append(
            [
                name,
                _s(a) if a is not None else "failed",
                _s(b) if b is not None else "failed",
                _ratio(a, b),
                "≤ 1.0x",
                " / ".join(_mb(peak) for peak in peaks),
            ]
        )
    return rows


def _status_lines(results: dict[str, ServerResult]) -> list[str]:
    lines = []
    for server, result in results.items():
        lines.append(
            f"- **{server}** ({result.version}): {result.status}; registration: "
            + ", ".join(f"{k}: {v}" for k, v in result.registration.items())
        )
        for scenario in result.scenarios:
            if scenario.status != "ok":
                lines.append(f"  - {scenario.name}: **{scenario.status}** — {scenario.reason[:300]}")
        lines += [f"  - note: {note[:1500]}" for note in result.notes]
    return lines


def _targets(results: dict[str, ServerResult]) -> list[str]:
    """The issue's targets, each checked against this run: met, missed, or not measurable."""
    ours, up = results.get(OURS), results.get(UPSTREAM)
    if ours is None or up is None:
        return ["(targets need both servers in the run)"]
    met: list[str] = []
    missed: list[str] = []
    unknown: list[str] = []

    def check(label: str, value: float | None, limit: float, *, at_most: bool, fmt: str = "{:.2f}x") -> None:
        if value is None:
            unknown.append(label)
        elif (value <= limit) if at_most else (value >= limit):
            met.append(f"{label} ({fmt.format(value)})")
        else:
            missed.append(f"{label} ({fmt.format(value)})")

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    mb = "{:.0f} MB"
    check(
        "idle RSS <= 100 MB",
        None if ours.idle_rss is None else ours.idle_rss / 1e6,
        100,
        at_most=True,
        fmt=mb,
    )
    without_payloads = max((v for k, v in ours.peak_rss_by_phase.items() if k != "payload"), default=None)
    check(
        "peak RSS without the payload scenarios <= 300 MB",
        None if without_payloads is None else without_payloads / 1e6,
        300,
        at_most=True,
        fmt=mb,
    )
    check(
        "RSS idle after the runs <= 150 MB",
        None if ours.idle_rss_after is None else ours.idle_rss_after / 1e6,
        150,
        at_most=True,
        fmt=mb,
    )
    check(
        "longest restart to ready under load <= 0.5 s",
        max(ours.kills_under_load_s) if ours.kills_under_load_s else None,
        0.5,
        at_most=True,
        fmt="{:.2f} s",
    )
    for name, seconds in ours.sql_s.items():
        check(f"SQL {name} <= 1.0x", ratio(seconds, up.sql_s.get(name)), 1.0, at_most=True)
    check(
        "fresh data dir <= 10 MB",
        None if ours.disk_fresh is None else ours.disk_fresh / 1e6,
        10,
        at_most=True,
        fmt="{:.1f} MB",
    )
    theirs = {s.name: s for s in up.scenarios}
    for mine in ours.scenarios:
        other = theirs.get(mine.name)
        ran = mine.ops and other is not None and other.ops
        a = mine if ran else None
        b = other if ran else None
        check(
            f"{mine.name} throughput >= 1.0x",
            ratio(a.throughput if a else None, b.throughput if b else None),
            1.0,
            at_most=False,
        )
        check(
            f"{mine.name} server CPU/op <= 0.5x",
            ratio(a.server_cpu_ms_per_op if a else None, b.server_cpu_ms_per_op if b else None),
            0.5,
            at_most=True,
        )
        if mine.name.startswith(("greet-c1 ", "payload-")):
            check(
                f"{mine.name} p50 <= 1.0x",
                ratio(a.p50_ms if a else None, b.p50_ms if b else None),
                1.0,
                at_most=True,
            )
    return [
        f"- **met ({len(met)})**: " + ("; ".join(met) or "none"),
        f"- **missed ({len(missed)})**: " + ("; ".join(missed) or "none"),
        f"- **not measured ({len(unknown)})**: " + ("; ".join(unknown) or "none"),
    ]


def charts_markdown(settings: dict[str, Any]) -> list[str]:
    """Links to the PNG charts drawn from this run (``bench/charts.py``), if it drew them."""
    return [f"![{title}](charts/{name}.png)" for name, title in settings.get("charts", {}).items()] or [
        "(no charts: matplotlib was not installed)"
    ]


def render(results: dict[str, ServerResult], machine: dict[str, str], settings: dict[str, Any]) -> str:
    """The generated part of RESULTS.md (also what the terminal shows)."""
    main_rows, cost_rows = _scenario_rows(results)
    out = ["# Benchmark results: restate-py-server (ours) vs restate-server (upstream)", ""]
    out += [
        f"Generated by `bench/run.sh` on {settings['date']}. Regenerate: `bench/run.sh` "
        f"(flags used: `{settings['argv']}`).",
        "",
    ]
    out += ["## Machine", "", *_table(["", ""], [[k, v] for k, v in machine.items()]), ""]
    out += [
        "## Setup",
        "",
        f"- Each server in turn, alone, inside a private network namespace with only loopback; "
        f"per scenario at most {settings['duration_s']} s and {settings['max_ops']:,} operations "
        "(closed loop, every response checked)"
        + (
            f"; the servers ran {settings['repeat']} times in ABBA order, and every figure is the median"
            if settings.get("repeat", 1) > 1
            else ""
        )
        + ".",
        "- One SDK process per deployment (restate-sdk under hypercorn + uvloop): `Greeter`… over h2c "
        "(bidi), `H1Greeter`… registered with `use_http_11` (request/response). Both are started "
        "afresh for each server.",
        "- Load generator: this harness's own keep-alive HTTP/1.1 client on uvloop, one connection per "
        "caller, in the harness process; its CPU per op and utilisation are in the cost table.",
        (
            "- Retention: every service/object call carries a unique `idempotency-key`, so both servers "
            "keep every finished call for the services' idempotency retention (upstream's ingress makes up "
            "a key for every such call anyway; workflow calls carry none)."
            if settings.get("idempotency_keys", True)
            else "- Retention: calls carry no `idempotency-key`; upstream still makes one up for every "
            "service/object call and keeps each finished call for a day, a server that does not keeps less."
        ),
        "- CPU per op: user+system time of the server's process tree over the measured window "
        "(for `send`, including the backlog drain) ÷ completed operations.",
        f"- All three (server, SDK processes, generator) share the machine's {machine.get('cores')} "
        "cores, so throughput is bounded by their sum; compare ratios, not absolutes.",
        f"- The machine is shared: load average {settings.get('loadavg_start', '?')} at the start, "
        f"{settings.get('loadavg_end', '?')} at the end. The cost table's *other processes* column is the "
        "CPU the rest of the machine used during each scenario (% of one core, from /proc/stat); when it "
        "is high, that scenario's figures are skewed.",
        "",
    ]
    if settings.get("profiled"):
        out += ["**This run was profiled with py-spy: our server's figures include the sampling cost.**", ""]
    out += ["## Status", "", *_status_lines(results), ""]
    out += ["## Targets (issues 4 and 12), ours against upstream in this run", "", *_targets(results), ""]
    out += ["## Charts", "", *charts_markdown(settings), ""]
    out += ["## Server figures", ""]
    out += [*_table(["figure", "ours", "upstream", "ours/upstream", "target"], _server_rows(results)), ""]
    out += ["## SQL after the runs (`POST /query`, JSON answer, best of 3)", ""]
    header = ["query", "ours", "upstream", "ours/upstream", "target", "peak RSS during it (ours / upstream)"]
    out += [*_table(header, _sql_rows(results)), ""]
    out += ["## Scenarios", ""]
    out += [*_table(["scenario", "figure", "ours", "upstream", "ours/upstream", "target"], main_rows), ""]
    out += ["## Cost of the load generator and the SDK processes", ""]
    out += [
        *_table(
            [
                "scenario",
                "server",
                "ops",
                "errors",
                "wall",
                "generator CPU/op",
                "generator util",
                "SDK CPU/op",
                "server util",
                "other processes",
                "extra",
            ],
            cost_rows,
        ),
        "",
    ]
    return "\n".join(out)


def write(
    path: Path,
    text: str,
    runs: dict[str, list[ServerResult]],
    machine: dict[str, str],
    settings: dict[str, Any],
) -> None:
    """Rewrite ``path`` (keeping the hand-written tail) and the JSON record of every run next to it."""
    kept = ""
    if path.exists():
        old = path.read_text()
        if KEEP_MARKER in old:
            kept = old[old.index(KEEP_MARKER) + len(KEEP_MARKER) :]
    path.write_text(
        text + "\n" + KEEP_MARKER + (kept or "\n\n## Notes\n\n(hand-written analysis goes here)\n")
    )
    record = {
        "settings": settings,
        "machine": machine,
        "runs": {name: [dataclasses.asdict(result) for result in results] for name, results in runs.items()},
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str) + "\n")


def read(path: Path) -> tuple[dict[str, list[ServerResult]], dict[str, str], dict[str, Any]]:
    """The runs, machine and settings of a JSON record written by ``write``."""
    record = json.loads(path.read_text())
    runs: dict[str, list[ServerResult]] = {}
    for name, results in record["runs"].items():
        for raw in results:
            fields = dict(raw)
            scenarios = [ScenarioResult(**s) for s in fields.pop("scenarios")]
            runs.setdefault(name, []).append(ServerResult(**fields, scenarios=scenarios))
    return runs, record["machine"], record["settings"]
