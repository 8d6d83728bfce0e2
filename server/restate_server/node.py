"""A single node: opens the storage, replays the partitions, leads them, and serves HTTP.

Start-up order matters for durability: every partition checks that its log reaches the store's
applied LSN (refusing to start otherwise) and replays its log suffix before anything new is
accepted; then the node acquires each partition's log with a new epoch (fencing older writers),
announces that leader epoch through the log (`Leadership.become_leader`, per partition), and only
when that record is applied does the leader resume in-flight invocations, timers and outbox
deliveries.

Every long-lived task is spawned under one `restate_server.tasks.Supervisor`, which decides per task
whether a crash restarts it or stops the node with a non-zero exit (a restart replays the log and
recovers). `ready` is what every `/health` reports: a processor per partition and not stopping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from restate_server import memory
from restate_server.admin import invocations, kafka_clusters, query, subscriptions, ui
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.admin.discovery import DiscoveryClient
from restate_server.cluster import membership, rpc
from restate_server.cluster.ctl import topology
from restate_server.cluster.ctl.services import ControlServices
from restate_server.cluster.runtime import ClusterRuntime
from restate_server.cluster.scan import ClusterScan
from restate_server.cluster.worker import ClusterWorker
from restate_server.config import Config
from restate_server.ingress.app import Ingress
from restate_server.invoker.attempt import Transport
from restate_server.invoker.signing import RequestSigner
from restate_server.kafka.manager import KafkaIngress
from restate_server.log.api import LogCorrupted, LogProvider
from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.metadata.api import MetadataStore
from restate_server.metadata.providers.rocksdb import RocksDbMetadataStore
from restate_server.node_metrics import NodeMetricsSources
from restate_server.node_services import NodeServices
from restate_server.observability import metrics, scrape, tracing
from restate_server.replay.servicer import ReplayServicer
from restate_server.replay.source import LocalHistory
from restate_server.rocksdb import Database
from restate_server.schema.registry import SchemaRegistry
from restate_server.tasks import Policy, Supervisor
from restate_server.web import serving
from restate_server.worker import fault_injection
from restate_server.worker.api import WorkerHandle
from restate_server.worker.cleaner import Cleaner
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.log_trimmer import LogTrimmer
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.snapshotter import SnapshotScheduler
from restate_server.worker.waiters import Waiters

log = logging.getLogger(__name__)

_NUM_PARTITIONS_KEY = b"#num_partitions"


def _open_log_db(path: Path) -> Database:
    """The log's RocksDB; a WAL corrupted before its tail stops the node instead of losing records."""
    try:
        return Database(
            path, cache_bytes=2 * 1024 * 1024, write_buffer_bytes=4 * 1024 * 1024, strict_wal=True
        )
    except Exception as exc:  # rocksdict raises plain Exception("Corruption: ...")
        if "Corruption" not in str(exc):
            raise
        raise LogCorrupted(
            f"the log at {path} cannot be opened ({exc}); refusing to start rather than dropping"
            " acknowledged records"
        ) from exc


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def _processor_task(partition: int) -> str:
    return f"partition-{partition}"


class NodeFailed(Exception):
    """A task the node cannot run without crashed (`restate_server.tasks`): exit non-zero."""


class ListenError(Exception):
    """A listener could not bind: the message is the whole story (no traceback is printed)."""


# listener name -> (what it serves, the key that moves it)
_LISTENERS = {
    "ingress": ("Ingress HTTP", "ingress.bind-address (RESTATE_INGRESS__BIND_ADDRESS)"),
    "admin": ("Admin API", "admin.bind-address (RESTATE_ADMIN__BIND_ADDRESS)"),
    "node": ("Node server", "bind-address (RESTATE_BIND_ADDRESS)"),
}


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.runners: list[web.AppRunner] = []
        self.bound: dict[str, tuple[str, int]] = {}
        self.stopping = False
        self.failed = asyncio.Event()
        """Set when a task whose crash is fatal died: `run` stops the node and exits non-zero."""

    async def start(self) -> None:
        config = self.config
        started = time.monotonic()
        self.started_at = int(time.time() * 1000)
        observability = config.observability
        self.tracer = tracing.configure(
            observability.services_endpoint, headers=observability.tracing_headers, node_name=config.node_name
        )
        data_dir = config.node_dir
        # The partition store writes RocksDB's WAL without fsync: a killed process loses nothing of
        # it (RocksDB replays its WAL in C++ on open, so a restart replays next to nothing of the
        # log); after a power loss the processors replay the log from the applied LSN that survived.
        self.db = Database(data_dir / "db")
        memory.hold(self.db)
        self.supervisor = Supervisor(on_fatal=self._on_fatal)
        if config.cluster.clustered:
            self.cluster: ClusterRuntime | None = ClusterRuntime(config, self.supervisor)
            self.metadata: MetadataStore = self.cluster.metadata
            self.log: LogProvider = await self.cluster.open()
            num_partitions = await self.cluster.partition_count()
        else:
            self.cluster = None
            # Two RocksDB instances: log appends fsync, store writes must not queue behind those fsyncs.
            self.log_db = _open_log_db(data_dir / "log")
            memory.hold(self.log_db)
            self.metadata = RocksDbMetadataStore.open(data_dir)
            self.log = RocksDbLog(self.log_db)
            num_partitions = self._num_partitions()
        metrics.NUM_PARTITIONS.set(num_partitions)
        signer = None
        if config.request_identity_private_key_pem_file is not None:
            signer = RequestSigner.from_pem_file(config.request_identity_private_key_pem_file)
            log.info("request identity key id: %s", signer.key_id)
        headers = config.effective_request_headers()
        self.registry = await SchemaRegistry.load(
            self.metadata, discoverer=DiscoveryClient(signer=signer, request_headers=headers)
        )
        self.waiters = Waiters()
        self.snapshotter = SnapshotScheduler.from_options(
            config.worker.snapshots,
            self.db,
            staging_dir=data_dir / "db-snapshots",
            cluster_name=config.cluster_name,
            node_name=config.node_name,
        )
        if self.snapshotter is not None:
            self.snapshotter.snapshots.clear_staging()
        self.processors: dict[int, PartitionProcessor] = {}
        self.leadership = Leadership(
            config=config,
            db=self.db,
            log_provider=self.log,
            registry=self.registry,
            processors=self.processors,
            waiters=self.waiters,
            transport=Transport(signer=signer, additional_headers=headers),
            supervisor=self.supervisor,
        )
        self.leadership.start()
        metrics.NUM_ACTIVE_PARTITION_LEADERS.set_function(lambda: len(self.leadership.led_partitions))
        self.cleaner = Cleaner(
            self.db,
            partitions=lambda: self.leadership.led_partitions,
            propose=self.leadership.propose_until_landed,
            interval=max(config.worker.cleanup_interval, 1.0),
        )
        self.supervisor.spawn("cleaner", self.cleaner.run, Policy.RESTART)
        self.supervisor.spawn("memory-releaser", memory.Releaser().run, Policy.RESTART)
        self.node_services = NodeServices()
        replay = ReplayServicer(
            services=self.registry, source=LocalHistory(self.db), num_partitions=num_partitions
        )
        self.node_services.add_servicer(replay.register)
        if self.cluster is None:
            replayed, epoch = await self._lead_every_partition(num_partitions)
            worker = WorkerHandle(
                db=self.db,
                appender=self.leadership,
                waiters=self.waiters,
                num_partitions=num_partitions,
                ready=self.ready,
            )
            self._make_control(
                topology.SingleNode(
                    me=config.node_name,
                    started_at=self.started_at,
                    num_partitions=num_partitions,
                    db=self.db,
                    epoch=lambda p: self.leadership.epoch(p) or self.processors[p].leader_epoch,
                )
            )
            await self.control.start()
            await self.node_services.start()
        else:
            replayed, epoch = 0, 0
            routing = await self.cluster.start(
                info=self._node_info(),
                db=self.db,
                processors=self.processors,
                num_partitions=num_partitions,
                leadership=self.leadership,
                registry=self.registry,
                lookup_service=self._lookup_service,
                snapshotter=self.snapshotter,
            )
            self.peers = rpc.Peers()
            replay.leader_elsewhere = routing.leader_address
            worker = self.forwarding = ClusterWorker(
                routing=routing,
                peers=self.peers,
                db=self.db,
                appender=self.leadership,
                waiters=self.waiters,
                num_partitions=num_partitions,
                ready=self.ready,
            )
            self.leadership.deliver = worker.append  # outbox messages go to their partitions' leaders
            servicer = rpc.WorkerServicer(
                worker, self.leadership.is_leader, scan_sources=lambda: query.sources(self.admin_ctx)
            )
            self.node_services.add_servicer(servicer.register)
            etcd_members = len(config.cluster.metadata_addresses)
            self._make_control(topology.ClusterNode(self.cluster, etcd_members=etcd_members))
            await self.control.start()
            await self.node_services.start()
            # peers reach this node's gRPC services through the node port: serve it first
            await self._serve_node_port()
        if self.snapshotter is not None:
            self.snapshotter.start(range(num_partitions))
        ingress = Ingress(config, self.registry, worker)
        self.kafka = KafkaIngress(
            config=config, metadata=self.metadata, registry=self.registry, worker=worker
        )
        self.kafka.start()
        admin_ctx = self.admin_ctx = AdminContext(
            registry=self.registry,
            config=config,
            ingress_endpoint=self._ingress_endpoint,
            worker=worker,
            metadata=self.metadata,
            invoker_states=lambda: self.leadership.invoker.invocations,
            metadata_members=self.control.metadata_members,
        )
        if self.cluster is not None:  # /query reads the partitions led here, the rest from their leaders
            admin_ctx.answers_for = self.leadership.is_leader
            admin_ctx.remote_scan = ClusterScan(self.cluster.routing, self.peers, asyncio.get_running_loop())
        await self._serve(
            "ingress", ingress.app(), config.ingress.bind_address, config.ingress.connection_limits
        )
        admin_app = create_admin_app(
            admin_ctx,
            extra=[
                query.register,
                invocations.register,
                subscriptions.routes(self.kafka.changed),
                kafka_clusters.routes(self.kafka.changed),
            ],
        )
        if not config.admin.disable_web_ui:
            ui.install(admin_app)
        await self._serve("admin", admin_app, config.admin.bind_address, config.admin.connection_limits)
        if self.cluster is None:
            await self._serve_node_port()
        self._announce_listeners()
        log.info(
            "node %s ready in %.2fs (%d partitions, %d log records replayed, leader epoch %d)",
            config.node_name,
            time.monotonic() - started,
            num_partitions,
            replayed,
            epoch,
        )

    async def _lead_every_partition(self, num_partitions: int) -> tuple[int, int]:
        """A single node: replay every partition, then lead them all at a new epoch."""
        data_dir = self.config.node_dir
        if self.snapshotter is not None:  # a new or wiped store starts from the latest snapshots
            await self.snapshotter.snapshots.restore_empty(range(num_partitions))
        for p in range(num_partitions):
            processor = PartitionProcessor(p, num_partitions, self.db, self.log, self._lookup_service)
            self.processors[p] = processor
            self.leadership.attach(processor)
        try:
            replayed = 0
            for processor in self.processors.values():
                replayed += await processor.replay()
        except LogCorrupted as exc:
            raise LogCorrupted(f"{exc} (log at {data_dir / 'log'}); refusing to start") from exc
        metrics.NUM_ACTIVE_PARTITIONS.set(len(self.processors))
        tails = [await self.log.find_tail(p) for p in self.processors]
        # above every epoch seen, including one acquired by a run that crashed before announcing it
        epoch = max([*(p.leader_epoch for p in self.processors.values()), *(t.epoch for t in tails)]) + 1
        fault_injection.install(os.environ, self.processors.values(), self.leadership.timers)  # TEST HOOK
        for processor in self.processors.values():
            if self.snapshotter is not None:
                processor.on_applied = self.snapshotter.on_applied
            self.supervisor.spawn(_processor_task(processor.partition), processor.run, Policy.FATAL)
        interval = self.config.admin.log_trim_check_interval
        trimmer = LogTrimmer(self.db, self.log, self.processors, self.snapshotter, interval)
        self.supervisor.spawn("log-trimmer", trimmer.run, Policy.RESTART)
        for partition in self.processors:
            if not await self.leadership.become_leader(partition, epoch):
                raise RuntimeError(
                    f"partition {partition}: another sequencer holds its log above epoch {epoch}"
                )
        return replayed, epoch

    def _make_control(self, where: topology.Topology) -> None:
        """The services `restatectl` calls (`cluster.ctl`), answered from this node's state."""
        self.control = ControlServices(
            config=self.config,
            metadata=self.metadata,
            topology=where,
            log_provider=self.log,
            processors=self.processors,
            leadership=self.leadership,
            snapshotter=self.snapshotter,
            schema=self.registry,
            ready=self.ready,
            stopping=lambda: self.stopping,
            running=lambda p: self.supervisor.running(_processor_task(p)),
            started_at=self.started_at,
        )
        self.node_services.add_servicer(self.control.register)

    async def _serve_node_port(self) -> None:
        await self._serve(
            "node",
            scrape.node_app(
                NodeMetricsSources(self),
                prometheus=not self.config.observability.disable_prometheus,
                ready=self.ready,
            ),
            self.config.bind_address,
            sniff=self.control.sniff(self.node_services.sniff),
        )

    def _node_info(self) -> membership.NodeInfo:
        """How other nodes (and the CLI tools) reach this one: its advertised addresses."""
        config = self.config
        host = urlsplit(config.advertised_address).hostname or "127.0.0.1"

        def url(bind: str, advertised: str | None) -> str:
            if advertised:
                return advertised
            bind_host, port = _split_address(bind)
            return f"http://{host if bind_host in ('0.0.0.0', '::') else bind_host}:{port}/"

        return membership.NodeInfo(
            name=config.node_name,
            address=config.advertised_address,
            ingress=url(config.ingress.bind_address, config.ingress.advertised_ingress_endpoint),
            admin=url(config.admin.bind_address, config.admin.advertised_admin_endpoint),
            started_at=self.started_at,
        )

    def _announce_listeners(self) -> None:
        """Where each listener really is (a port 0 in the configuration is resolved here)."""
        ingress, admin, node = (_url(*self.bound[name]) for name in ("ingress", "admin", "node"))
        log.info("Ingress HTTP listening on %s", ingress)
        ui = "" if self.config.admin.disable_web_ui else f" (web UI at {admin}/ui/)"
        log.info("Admin API listening on %s%s", admin, ui)
        metrics_note = "" if self.config.observability.disable_prometheus else f" (metrics at {node}/metrics)"
        log.info("Node server listening on %s%s", node, metrics_note)
        log.info("Data directory: %s", self.config.node_dir.resolve())

    def _num_partitions(self) -> int:
        """Fixed at the first start, like upstream's provisioning; later config changes are ignored."""
        stored = self.log_db.get(_NUM_PARTITIONS_KEY)
        if stored is not None:
            return int(stored)
        from restate_server.rocksdb import new_batch

        batch = new_batch()
        batch.put(_NUM_PARTITIONS_KEY, str(self.config.default_num_partitions).encode())
        self.log_db.write(batch, sync=True)
        return self.config.default_num_partitions

    def _lookup_service(self, name: str) -> tuple[str, dict[str, str | None]] | None:
        service = self.registry.service(name)
        if service is None:
            return None
        return str(service.ty), {
            h.name: (str(h.ty) if h.ty is not None else None) for h in service.handlers.values()
        }

    def _ingress_endpoint(self) -> str:
        if self.config.ingress.advertised_ingress_endpoint:
            return self.config.ingress.advertised_ingress_endpoint
        host, port = self.bound.get("ingress", ("127.0.0.1", 8080))
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port}/"

    async def _serve(
        self,
        name: str,
        app: web.Application,
        address: str,
        limits: serving.ListenerLimits = serving.DEFAULT_LIMITS,
        sniff: serving.Sniff | None = None,
    ) -> None:
        host, port = _split_address(address)
        try:
            runner = await serving.serve(app, name, host, port, limits, sniff)
        except OSError as exc:
            what, key = _LISTENERS[name]
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(
                f"[RT0004] {what} cannot listen on {address}: {reason}. Is another server running?"
                f" Choose another address with {key}."
            ) from None
        self.runners.append(runner)
        bound = [a for a in runner.addresses if isinstance(a, tuple)]
        self.bound[name] = (host, int(bound[0][1])) if bound else (host, port)

    @property
    def clustered(self) -> bool:
        return self.cluster is not None

    def ready(self) -> bool:
        """What `/health` reports: every partition this node holds has a running processor (a cluster
        node: once it has seen the partition table) and the node is not stopping."""
        if self.stopping:
            return False
        if self.cluster is not None and self.cluster.manager.table is None:
            return False
        return all(self.supervisor.running(_processor_task(p)) for p in self.processors)

    def _on_fatal(self, task: str, error: BaseException) -> None:
        """A task whose crash the node cannot recover from in place: stop, exit non-zero, replay on start."""
        self.stopping = True
        self.failed.set()

    async def stop(self) -> None:
        self.stopping = True
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.control.stop()
        await self.node_services.stop()
        await self.kafka.stop()  # consumers commit what is durable before the log closes
        await self.leadership.stop()
        if self.snapshotter is not None:
            await self.snapshotter.stop()
        await self.supervisor.stop()
        if self.cluster is not None:
            await self.forwarding.close()
            await self.cluster.stop()  # leaves the cluster, closes the etcd log and metadata
        else:
            await self.log.close()
            await self.metadata.close()
            self.log_db.close()
        self.db.close()
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)


async def run(config: Config) -> None:
    """Run a node until SIGTERM or SIGINT, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    node = Node(config)
    await node.start()
    signalled = asyncio.ensure_future(stop.wait())
    failed = asyncio.ensure_future(node.failed.wait())
    await asyncio.wait([signalled, failed], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    failed.cancel()
    log.info("shutting down")
    await asyncio.wait_for(node.stop(), timeout=config.shutdown_timeout)
    if node.supervisor.fatal is not None:
        name, error = node.supervisor.fatal
        raise NodeFailed(f"task {name} crashed: {error!r}; restart the node to replay and resume")
