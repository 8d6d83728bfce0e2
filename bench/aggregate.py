"""Folding repeated runs of one server into one result: the median of every figure.

On a shared 2-core machine a single 10-second window can be skewed by whatever else runs at that
moment; ``--repeat N`` alternates the servers N times and reports the median per figure, which a
single disturbed window cannot move. Figures are medians over the repetitions that completed
operations; errors add up, and a repetition that failed or erred marks the merged scenario as
"errors" with the failing runs named, so a problem seen once is never hidden by the others.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from bench.model import ScenarioResult, ServerResult

_STATUS_RANK = {"ok": 0, "not run": 1, "errors": 2, "failed": 3}


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return values[0] if values else None
    middle = statistics.median(numbers)
    return type(numbers[0])(middle) if isinstance(numbers[0], int) else middle


def _merge_extra(extras: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for extra in extras for k in extra):
        values = [extra[key] for extra in extras if key in extra]
        if all(isinstance(v, int | float) for v in values):
            merged[key] = round(_median(values), 3)
        else:
            merged[key] = values[0]
    return merged


def _scenarios(runs: list[list[ScenarioResult]]) -> list[ScenarioResult]:
    names = list(dict.fromkeys(s.name for run in runs for s in run))
    out = []
    for name in names:
        same = [s for run in runs for s in run if s.name == name]
        ran = [s for s in same if s.ops] or same
        merged = dataclasses.replace(ran[0])
        for field in dataclasses.fields(ScenarioResult):
            if field.name in ("name", "mode", "status", "reason", "error_samples", "extra", "errors"):
                continue
            setattr(merged, field.name, _median([getattr(s, field.name) for s in ran]))
        merged.errors = sum(s.errors for s in same)
        worst = max((s.status for s in same), key=lambda st: _STATUS_RANK.get(st, 3))
        partial = any(s.ops for s in same) and worst != "ok"
        # Figures from the runs that worked are still shown; the failed runs are named in the reason.
        merged.status = "errors" if partial else worst
        merged.reason = " | ".join(
            dict.fromkeys(
                f"run {n + 1}: {s.status}: {s.reason}" for n, s in enumerate(same) if s.status != "ok"
            )
        )
        merged.error_samples = [e for s in same for e in s.error_samples][:5]
        merged.extra = _merge_extra([s.extra for s in ran])
        if len(same) > 1:
            merged.extra["runs"] = len(same)
        out.append(merged)
    return out


def median_result(runs: list[ServerResult]) -> ServerResult:
    """One ``ServerResult`` whose figures are the medians over ``runs`` (the same server)."""
    if len(runs) == 1:
        return runs[0]
    merged = dataclasses.replace(runs[0])
    for field in dataclasses.fields(ServerResult):
        value = getattr(runs[0], field.name)
        if field.name == "scenarios":
            merged.scenarios = _scenarios([r.scenarios for r in runs])
        elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            setattr(merged, field.name, _median([getattr(r, field.name) for r in runs]))
    merged.sql_s = {
        name: round(_median([r.sql_s[name] for r in runs if name in r.sql_s]), 4)
        for name in dict.fromkeys(n for r in runs for n in r.sql_s)
    }
    merged.kills_under_load_s = [t for r in runs for t in r.kills_under_load_s]
    merged.status = "; ".join(dict.fromkeys(r.status for r in runs))
    merged.notes = [note for r in runs for note in r.notes]
    return merged
