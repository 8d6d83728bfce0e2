"""Summaries with quantiles over a recent window, shaped like upstream's latency metrics.

Upstream records histograms with the `metrics` crate and its Prometheus exporter renders them as
summaries: `quantile="0.5"`, `"0.9"`, `"0.99"` and `"1"` samples over a rolling window, plus `_sum`
and `_count` since start. prometheus-client's own `Summary` has no quantiles, so this small collector
keeps the last observations of each label set (bounded in count and age) and computes the quantiles
when scraped. Observing is an append to a bounded deque: cheap enough for every request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric

WINDOW_SECONDS = 60.0
"""Observations older than this leave the quantiles (upstream's exporter keeps about a minute)."""
MAX_SAMPLES = 1024
"""Observations kept per label set: bounds memory and the sort at scrape time under any load."""
QUANTILES = (("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99), ("1", 1.0))


class Window:
    """One label set's recent observations and its running totals."""

    __slots__ = ("_recent", "count", "total")

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self._recent.append((time.monotonic(), value))
        self.count += 1
        self.total += value

    def quantiles(self) -> list[tuple[str, float]]:
        """Nearest-rank quantiles of the window; empty when nothing was observed lately."""
        since = time.monotonic() - WINDOW_SECONDS
        values = sorted(value for at, value in list(self._recent) if at >= since)
        if not values:
            return []
        last = len(values) - 1
        return [(label, values[min(last, int(q * len(values)))]) for label, q in QUANTILES]


class QuantileSummary:
    """A labelled summary metric; `labels(...)` returns the `Window` to observe into."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._windows: dict[tuple[str, ...], Window] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> Window:
        window = self._windows.get(values)
        if window is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            window = self._windows[values] = Window()
        return window

    def observe(self, value: float) -> None:
        """For a summary without labels."""
        self.labels().observe(value)

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, "summary")]

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "summary")
        for values, window in list(self._windows.items()):
            labels = dict(zip(self.labelnames, values, strict=True))
            for quantile, value in window.quantiles():
                metric.add_sample(self.name, {**labels, "quantile": quantile}, value)
            metric.add_sample(self.name + "_sum", labels, window.total)
            metric.add_sample(self.name + "_count", labels, window.count)
        yield metric
