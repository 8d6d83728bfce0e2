"""The pieces behind `/metrics` and traces that need no server: quantiles, RocksDB statistics, W3C contexts."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from restate_server.observability import quantiles, scrape, tracing

STATS = """rocksdb.wal.synced COUNT : 5
rocksdb.wal.bytes COUNT : 90
rocksdb.wal.file.sync.micros P50 : 99.000000 P95 : 208.000000 P99 : 208.000000 P100 : 208.000000 COUNT : 5 SUM : 610
"""


def test_quantile_summary_renders_upstream_shaped_samples() -> None:
    registry = CollectorRegistry()
    summary = quantiles.QuantileSummary("t_duration_seconds", "doc", ["rpc_service"], registry=registry)
    for value in range(1, 101):
        summary.labels("Greeter").observe(value / 100)
    text = generate_latest(registry).decode()
    assert "# TYPE t_duration_seconds summary" in text
    assert 't_duration_seconds{quantile="0.5",rpc_service="Greeter"} 0.51' in text
    assert 't_duration_seconds{quantile="1",rpc_service="Greeter"} 1.0' in text
    assert 't_duration_seconds_count{rpc_service="Greeter"} 100.0' in text


def test_quantile_window_is_bounded_and_forgets_old_observations(monkeypatch: pytest.MonkeyPatch) -> None:
    window = quantiles.Window()
    for value in range(quantiles.MAX_SAMPLES * 3):
        window.observe(float(value))
    assert window.count == quantiles.MAX_SAMPLES * 3
    assert dict(window.quantiles())["1"] == quantiles.MAX_SAMPLES * 3 - 1
    now = quantiles.time.monotonic()
    monkeypatch.setattr(quantiles.time, "monotonic", lambda: now + quantiles.WINDOW_SECONDS + 1)
    assert window.quantiles() == []  # totals stay, quantiles cover the recent window only
    assert window.count == quantiles.MAX_SAMPLES * 3


def test_labels_must_match_the_declared_names() -> None:
    summary = quantiles.QuantileSummary("t_other", "doc", ["a", "b"], registry=None)
    with pytest.raises(ValueError, match="takes labels"):
        summary.labels("only-one")


def test_rocksdb_statistics_are_parsed() -> None:
    parsed = scrape.parse_statistics(STATS)
    assert parsed["rocksdb.wal.synced"] == {"COUNT": 5.0}
    assert parsed["rocksdb.wal.file.sync.micros"]["P99"] == 208.0
    assert parsed["rocksdb.wal.file.sync.micros"]["SUM"] == 610.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            (0x4BF92F3577B34DA6A3CE929D0E0E4736, True),
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00",
            (0x4BF92F3577B34DA6A3CE929D0E0E4736, False),
        ),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            (0x4BF92F3577B34DA6A3CE929D0E0E4736, True),
        ),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("garbage", None),
        (None, None),
    ],
    ids=[
        "sampled",
        "unsampled-uppercase",
        "future-version",
        "invalid-version",
        "zero-trace",
        "zero-span",
        "garbage",
        "absent",
    ],
)
def test_traceparent_parsing_follows_w3c(header: str | None, expected: tuple[int, bool] | None) -> None:
    parsed = tracing.parse_traceparent(header)
    assert (None if parsed is None else (parsed.trace_id, parsed.sampled)) == expected
    if parsed is not None and header is not None and header.startswith("00"):
        assert parsed.header() == header.lower()


def test_invocation_span_context_is_derived_from_the_invocation_id() -> None:
    """The same invocation gets the same span on every attempt and node; the parent's trace is kept."""
    tracer = tracing.Tracer.__new__(tracing.Tracer)  # no provider needed to derive ids
    target = tracing.Target(invocation_id="inv_1", uuid=bytes(range(16)), service="S", handler="h")
    parent = tracing.Parent(trace_id=7, span_id=9, sampled=True)
    first, again = tracer.invocation(target, parent), tracer.invocation(target, parent)
    assert first == again
    assert first.trace_id == 7
    assert first.span_id == int.from_bytes(bytes(range(8, 16)), "big")
    assert tracer.invocation(target, None).trace_id == int.from_bytes(bytes(range(16)), "big")
    assert target.short == "S/h"
    assert (
        tracing.Target(invocation_id="i", uuid=bytes(16), service="S", handler="h", key="k").short == "S/k/h"
    )
