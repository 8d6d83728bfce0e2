"""The run as pictures: ours against upstream per scenario, memory over time, SQL and restarts.

``draw(results, directory)`` writes PNG files (matplotlib, no display needed) and returns
``{file stem: title}`` for ``RESULTS.md`` to link. Bars pair the two servers per scenario so the
comparison reads at a glance; the memory chart plots each server's sampled RSS over its whole run
(start, scenarios, SQL, the SIGKILLs, the final restart). Nothing here measures anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.model import ScenarioResult, ServerResult

COLOURS = {"ours": "#2a7ab0", "upstream": "#d9822b"}


def draw(results: dict[str, ServerResult], directory: Path) -> dict[str, str]:
    """Draw every chart into ``directory``; {} when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    per_scenario: list[tuple[str, str, Callable[[ScenarioResult], float | None], str]] = [
        (
            "throughput",
            "Throughput (ops/s, higher is better)",
            lambda s: s.throughput if s.ops else None,
            "ops/s",
        ),
        ("latency_p50", "p50 latency (ms, lower is better)", lambda s: s.p50_ms, "ms"),
        ("latency_p99", "p99 latency (ms, lower is better)", lambda s: s.p99_ms, "ms"),
        (
            "cpu_per_op",
            "Server CPU per operation (ms, lower is better)",
            lambda s: s.server_cpu_ms_per_op,
            "ms",
        ),
    ]
    for name, title, get, unit in per_scenario:
        if _bars(results, directory / f"{name}.png", title, get, unit):
            drawn[name] = title
    if _memory(results, directory / "memory.png"):
        drawn["memory"] = "Server RSS over the run (MB)"
    if _sql(results, directory / "sql.png"):
        drawn["sql"] = "SQL query time after the runs (s, log scale)"
    if _restarts(results, directory / "restarts.png"):
        drawn["restarts"] = "Restart to ready after each SIGKILL under load (s)"
    return drawn


def _figure(height: float) -> tuple[object, object]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(11, height), dpi=90)


def _save(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]


def _bars(
    results: dict[str, ServerResult],
    path: Path,
    title: str,
    get: Callable[[ScenarioResult], float | None],
    unit: str,
) -> bool:
    names = list(dict.fromkeys(s.name for r in results.values() for s in r.scenarios))
    if not names:
        return False
    fig, ax = _figure(0.32 * len(names) + 1.2)
    height = 0.8 / max(len(results), 1)
    for n, (server, result) in enumerate(results.items()):
        by_name = {s.name: s for s in result.scenarios}
        values = [(get(by_name[x]) if x in by_name and by_name[x].ops else None) or 0.0 for x in names]
        positions = [i + n * height for i in range(len(names))]
        ax.barh(positions, values, height=height, label=server, color=COLOURS.get(server))  # type: ignore[attr-defined]
    ax.set_yticks([i + height * (len(results) - 1) / 2 for i in range(len(names))], names, fontsize=8)  # type: ignore[attr-defined]
    ax.invert_yaxis()  # type: ignore[attr-defined]
    ax.set_xlabel(unit)  # type: ignore[attr-defined]
    ax.set_title(title)  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]
    _save(fig, path)
    return True


def _memory(results: dict[str, ServerResult], path: Path) -> bool:
    if not any(r.rss_timeline for r in results.values()):
        return False
    fig, ax = _figure(4.0)
    for server, result in results.items():
        if result.rss_timeline:
            xs, ys = zip(*result.rss_timeline, strict=True)
            ax.plot(xs, ys, label=server, color=COLOURS.get(server))  # type: ignore[attr-defined]
    ax.axhline(300, color="grey", linestyle="--", linewidth=0.8, label="peak target 300 MB")  # type: ignore[attr-defined]
    ax.axhline(150, color="grey", linestyle=":", linewidth=0.8, label="idle target 150 MB")  # type: ignore[attr-defined]
    ax.set_xlabel("seconds since the server started (scenarios, SQL, SIGKILLs, restart)")  # type: ignore[attr-defined]
    ax.set_ylabel("RSS (MB)")  # type: ignore[attr-defined]
    ax.set_title("Server RSS over the run")  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]
    _save(fig, path)
    return True


def _sql(results: dict[str, ServerResult], path: Path) -> bool:
    names = list(dict.fromkeys(q for r in results.values() for q in r.sql_s))
    if not names:
        return False
    fig, ax = _figure(0.45 * len(names) + 1.2)
    height = 0.8 / max(len(results), 1)
    for n, (server, result) in enumerate(results.items()):
        values = [result.sql_s.get(q, 0.0) for q in names]
        ax.barh(
            [i + n * height for i in range(len(names))],
            values,
            height=height,
            label=server,
            color=COLOURS.get(server),
        )  # type: ignore[attr-defined]
    ax.set_yticks([i + height * (len(results) - 1) / 2 for i in range(len(names))], names, fontsize=8)  # type: ignore[attr-defined]
    ax.set_xscale("log")  # type: ignore[attr-defined]
    ax.invert_yaxis()  # type: ignore[attr-defined]
    ax.set_xlabel("seconds")  # type: ignore[attr-defined]
    ax.set_title("SQL query time after the runs (lower is better)")  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]
    _save(fig, path)
    return True


def _restarts(results: dict[str, ServerResult], path: Path) -> bool:
    if not any(r.kills_under_load_s for r in results.values()):
        return False
    fig, ax = _figure(3.5)
    for server, result in results.items():
        times = result.kills_under_load_s
        ax.plot(range(1, len(times) + 1), times, marker="o", label=server, color=COLOURS.get(server))  # type: ignore[attr-defined]
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8, label="target 0.5 s")  # type: ignore[attr-defined]
    ax.set_xlabel("SIGKILL under load (#)")  # type: ignore[attr-defined]
    ax.set_ylabel("spawn to ready (s)")  # type: ignore[attr-defined]
    ax.set_title("Restart to ready after each SIGKILL under load")  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]
    _save(fig, path)
    return True
