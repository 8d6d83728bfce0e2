"""The node port's `/metrics`: counters kept by the components plus values read when scraped.

Some metrics are states, not events: RocksDB's sizes and WAL statistics, each partition's applied
LSN and leadership, how many invocations are in each status. They are read at scrape time from
`NodeSources` (implemented by the node, so this module stays below every component), before the
exposition is rendered: the store scan behind the status counts (which the node runs in a thread)
is reused for `STATUS_SCAN_INTERVAL`, so frequent scrapes cost a big store little.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from restate_server.observability import metrics

STATUS_SCAN_INTERVAL = 10.0
"""Seconds a count of invocation statuses is reused: scanning the status table is O(invocations)."""
_MICROS = 1e-6
# upstream's exporter labels RocksDB's own percentiles like this
_ROCKSDB_QUANTILES = (("0.5", "P50"), ("0.95", "P95"), ("0.99", "P99"), ("1.0", "P100"))
_STAT_LINE = re.compile(r"^(rocksdb\.[\w.]+) (.*)$")
_STAT_FIELD = re.compile(r"(\w+) : ([\d.]+)")


class Database(Protocol):
    """What is read from one RocksDB instance (`restate_server.rocksdb.Database` has it)."""

    def property_int(self, name: str) -> int | None: ...

    def statistics(self) -> str | None:
        """RocksDB's statistics dump, None when statistics are off."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionView:
    partition: int
    applied_lsn: int
    tail_lsn: int
    """The last durable LSN of the partition's log."""
    leader: bool


class NodeSources(Protocol):
    """The node's state, as the scrape reads it."""

    def databases(self) -> Mapping[str, Database]:
        """By upstream's database name (`db`, `local-loglet`)."""
        ...

    async def partitions(self) -> list[PartitionView]: ...

    async def invocation_counts(self) -> Mapping[str, int]:
        """Invocations by `sys_invocation` status (a store scan: keep it off the event loop)."""
        ...


def parse_statistics(text: str) -> dict[str, dict[str, float]]:
    """RocksDB's statistics dump: `name COUNT : 5` and `name P50 : 1.0 ... COUNT : 5 SUM : 9` lines."""
    parsed: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _STAT_LINE.match(line.strip())
        if match is not None:
            parsed[match.group(1)] = {k: float(v) for k, v in _STAT_FIELD.findall(match.group(2))}
    return parsed


@dataclass(slots=True)
class _Snapshot:
    partitions: list[PartitionView] = field(default_factory=list)
    properties: dict[str, dict[str, int]] = field(default_factory=dict)
    statistics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    invocations: Mapping[str, int] = field(default_factory=dict)


class NodeCollector:
    """Reads `NodeSources` on `refresh()`; renders what it read on `collect()`."""

    def __init__(self, sources: NodeSources) -> None:
        self.sources = sources
        self._snapshot = _Snapshot()
        self._counted_at: float | None = None

    async def refresh(self) -> None:
        snapshot = _Snapshot(
            partitions=await self.sources.partitions(), invocations=self._snapshot.invocations
        )
        for name, db in self.sources.databases().items():
            snapshot.properties[name] = {
                metric: value
                for metric, prop in metrics.ROCKSDB_PROPERTIES.items()
                if (value := db.property_int(prop)) is not None
            }
            stats = db.statistics()
            if stats is not None:
                snapshot.statistics[name] = parse_statistics(stats)
        now = time.monotonic()
        if self._counted_at is None or now - self._counted_at >= STATUS_SCAN_INTERVAL:
            snapshot.invocations = await self.sources.invocation_counts()
            self._counted_at = now
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._partitions(self._snapshot.partitions)
        invocations = GaugeMetricFamily(
            metrics.INVOCATIONS, "Number of invocations by status (sys_invocation's names)", labels=["status"]
        )
        for status, count in sorted(self._snapshot.invocations.items()):
            invocations.add_metric([status], count)
        yield invocations
        yield from self._rocksdb()

    @staticmethod
    def _partitions(views: list[PartitionView]) -> Iterator[Metric]:
        applied = GaugeMetricFamily(
            metrics.PARTITION_APPLIED_LSN,
            "Last log LSN the partition processor applied",
            labels=["partition"],
        )
        leader = GaugeMetricFamily(
            metrics.PARTITION_IS_LEADER, "1 while this node leads the partition, else 0", labels=["partition"]
        )
        for view in views:
            applied.add_metric([str(view.partition)], view.applied_lsn)
            leader.add_metric([str(view.partition)], 1 if view.leader else 0)
        lag = Metric(
            metrics.PARTITION_APPLIED_LSN_LAG,
            "Current quantiles of the number of records between last applied lsn and the log tail,"
            " across the partitions on this node",
            "gauge",
        )
        lags = sorted(max(0, v.tail_lsn - v.applied_lsn) for v in views)
        for label, q in (("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99), ("1.0", 1.0)):
            if lags:
                lag.add_sample(lag.name, {"quantile": label}, lags[min(len(lags) - 1, int(q * len(lags)))])
        yield from (applied, leader, lag)

    def _rocksdb(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        for metric, _prop in metrics.ROCKSDB_PROPERTIES.items():
            family = GaugeMetricFamily(metric, f"RocksDB property {_prop}", labels=["db", "cf"])
            for db, values in snapshot.properties.items():
                if metric in values:
                    family.add_metric([db, "default"], values[metric])
            yield family
        for metric, ticker in metrics.ROCKSDB_TICKERS.items():
            counter = CounterMetricFamily(metric, f"RocksDB ticker {ticker}", labels=["db"])
            for db, stats in snapshot.statistics.items():
                if ticker in stats:
                    counter.add_metric([db], stats[ticker].get("COUNT", 0.0))
            yield counter
        for metric, histogram in metrics.ROCKSDB_HISTOGRAMS.items():
            summary = Metric(metric, f"RocksDB histogram {histogram}", "summary")
            for db, stats in snapshot.statistics.items():
                fields = stats.get(histogram)
                if fields is None:
                    continue
                for label, key in _ROCKSDB_QUANTILES:
                    summary.add_sample(metric, {"db": db, "quantile": label}, fields.get(key, 0.0) * _MICROS)
                summary.add_sample(metric + "_sum", {"db": db}, fields.get("SUM", 0.0) * _MICROS)
                summary.add_sample(metric + "_count", {"db": db}, fields.get("COUNT", 0.0))
            yield summary


def node_app(
    sources: NodeSources | None, *, prometheus: bool = True, ready: Callable[[], bool] = lambda: True
) -> web.Application:
    """The node port's HTTP app: `/health` (200 while `ready()`, else 503: the node cannot serve, or is
    stopping), and `/metrics` unless `disable-prometheus` is set."""

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if ready() else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    if prometheus:
        collector = NodeCollector(sources) if sources is not None else None
        registry = CollectorRegistry(auto_describe=False)
        if collector is not None:
            registry.register(collector)

        async def scrape(request: web.Request) -> web.Response:
            if collector is not None:
                await collector.refresh()
            body = generate_latest(REGISTRY) + generate_latest(registry)
            return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})

        app.router.add_get("/metrics", scrape)
    return app
