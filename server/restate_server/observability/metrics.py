"""Prometheus metrics: every metric name of the server, defined once, with upstream's names.

Names are those the real `restate-server` 1.7 exports on the node port's `/metrics` (its
`crates/*/src/metric_definitions.rs`, rendered by the Prometheus exporter: dots become underscores,
counters end in `_total`, latencies are summaries with quantiles), with upstream's label names
(`rpc.service` is exported as `rpc_service`). Dashboards written for upstream therefore work here
for every metric both servers have. The few metrics upstream has no counterpart for (invocation
status counts, applied LSN per partition, SQL queries) are marked "this server's own" and follow
upstream's naming style.

Components update the instruments below directly (a counter increment, an observation: cheap
enough for the hot path); values that are read rather than counted (RocksDB sizes, partition LSNs,
invocation status counts) are gathered when `/metrics` is scraped (`observability.scrape`). The
names of those scrape-time families live here too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, disable_created_metrics

from restate_server.observability.quantiles import QuantileSummary

# Upstream exports no `_created` series; neither do we.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

# ---- ingress (upstream crates/ingress-http)
INGRESS_REQUESTS = Counter(
    "restate_ingress_requests",
    "Number of ingress requests in different states, see label state to classify",
    ["status", "rpc_service", "rpc_type"],
)
"""`status`: `admitted` (every request past load shedding, no rpc labels), then one of `completed`,
`invocation_error` (the invocation answered 4xx/5xx), `request_error` (a bad request),
`ingress_error` (the ingress failed), or `rate-limited` (shed with 429)."""
INGRESS_REQUEST_DURATION = QuantileSummary(
    "restate_ingress_request_duration_seconds",
    "Total latency of Ingress request processing in seconds",
    ["rpc_service", "rpc_type"],
)
REQUEST_ADMITTED = "admitted"
REQUEST_COMPLETED = "completed"
REQUEST_INVOCATION_ERROR = "invocation_error"
REQUEST_ERROR = "request_error"
REQUEST_INGRESS_ERROR = "ingress_error"
REQUEST_RATE_LIMITED = "rate-limited"

# ---- invoker (upstream crates/invoker-impl)
INVOKER_ENQUEUE = Counter(
    "restate_invoker_enqueue", "Number of invocations that were added to the queue", ["partition_id"]
)
INVOKER_INVOCATION_TASKS = Counter(
    "restate_invoker_invocation_tasks", "Invocation task operation", ["status", "transient", "partition_id"]
)
"""`status`: `started` per attempt, then `completed`, `suspended` or `failed` (`transient` says
whether it will be retried)."""
TASK_STARTED = "started"
TASK_COMPLETED = "completed"
TASK_SUSPENDED = "suspended"
TASK_FAILED = "failed"
INVOKER_TASK_DURATION = QuantileSummary(
    "restate_invoker_task_duration_seconds", "Time taken to complete an invoker task"
)
INVOKER_CONCURRENCY_LIMIT = Gauge(
    "restate_invoker_concurrency_limit", "Concurrency limit (slots) for invoker tasks"
)
INVOKER_CLIENT_REQUESTS = Counter(
    "restate_invoker_client_requests",
    "Requests sent to deployments and their status codes",
    ["type", "status_code"],
)
"""`type`: `Http/bidi-stream` (h2c) or `Http/request-response` (HTTP/1.1)."""
INVOKER_SENT_BYTES = Counter("restate_invoker_sent_bytes", "Total bytes sent to deployments by the invoker")
INVOKER_RECEIVED_BYTES = Counter(
    "restate_invoker_received_bytes", "Total bytes invoker has received from deployments"
)

# ---- partition processors and leadership (upstream crates/worker)
NUM_PARTITIONS = Gauge("restate_num_partitions", "Total number of partitions in the partition table")
NUM_ACTIVE_PARTITIONS = Gauge(
    "restate_num_active_partitions",
    "Number of partitions started by partition processor manager on this node",
)
NUM_ACTIVE_PARTITION_LEADERS = Gauge(
    "restate_num_active_partition_leaders",
    "Number of active partition leaders started by partition processor manager on this node",
)
PARTITION_START = Counter(
    "restate_partition_start", "Number of partition processor starts on this node", ["partition"]
)
PARTITION_APPLY_COMMAND = QuantileSummary(
    "restate_partition_apply_command_duration_seconds",
    "Time spent applying partition processor command (here: one batch of log records, one transaction)",
)
PARTITION_HANDLE_LEADER_ACTIONS = Counter(
    "restate_partition_handle_leader_action", "Number of actions the leader has performed", ["action"]
)
PARTITION_SHUFFLE_MESSAGES = Counter(
    "restate_partition_shuffle_message", "Number of records shuffled by source partition", ["partition"]
)
# Scrape-time families (observability.scrape): the lag is upstream's, the others this server's own.
PARTITION_APPLIED_LSN_LAG = "restate_partition_applied_lsn_lag"
PARTITION_APPLIED_LSN = "restate_partition_applied_lsn"
PARTITION_IS_LEADER = "restate_partition_is_leader"
INVOCATIONS = "restate_invocations"
"""This server's own: invocations by `status`, with `sys_invocation`'s status names."""

# ---- the log (upstream crates/bifrost, local loglet)
BIFROST_LOCAL_APPENDS = Counter(
    "restate_bifrost_localloglet_appends", "Number of append requests to bifrost's local loglet"
)
BIFROST_LOCAL_APPEND_DURATION = QuantileSummary(
    "restate_bifrost_localloglet_append_duration_seconds",
    "Total latency of bifrost's local loglet appends (submitted to durable)",
)
BIFROST_LOCAL_WRITE_BATCH_COUNT = QuantileSummary(
    "restate_bifrost_localloglet_write_batch_count",
    "Histogram of the number of records in each append request to local loglet",
)
BIFROST_LOCAL_WRITE_BATCH_SIZE_BYTES = QuantileSummary(
    "restate_bifrost_localloglet_write_batch_size_bytes",
    "Histogram of size in bytes of local loglet write batches",
)
BIFROST_LOCAL_TRIM = Counter(
    "restate_bifrost_localloglet_trim", "Number of trim requests to bifrost's local loglet"
)

# ---- RocksDB (upstream crates/rocksdb, per `db`): scrape-time families from properties and statistics
ROCKSDB_PROPERTIES = {
    "restate_rocksdb_estimate_live_data_size_bytes": "rocksdb.estimate-live-data-size",
    "restate_rocksdb_total_sst_files_size_bytes": "rocksdb.total-sst-files-size",
    "restate_rocksdb_live_sst_files_size_bytes": "rocksdb.live-sst-files-size",
    "restate_rocksdb_cur_size_all_mem_tables_bytes": "rocksdb.cur-size-all-mem-tables",
    "restate_rocksdb_estimate_num_keys": "rocksdb.estimate-num-keys",
    "restate_rocksdb_num_running_compactions": "rocksdb.num-running-compactions",
    "restate_rocksdb_num_running_flushes": "rocksdb.num-running-flushes",
}
"""Gauge name -> RocksDB property (labels `db`, `cf`)."""
ROCKSDB_TICKERS = {
    "restate_rocksdb_wal_synced": "rocksdb.wal.synced",
    "restate_rocksdb_wal_bytes": "rocksdb.wal.bytes",
    "restate_rocksdb_bytes_written": "rocksdb.bytes.written",
    "restate_rocksdb_bytes_read": "rocksdb.bytes.read",
}
"""Counter name (without `_total`) -> RocksDB statistics ticker (label `db`)."""
ROCKSDB_HISTOGRAMS = {
    "restate_rocksdb_wal_file_sync_seconds": "rocksdb.wal.file.sync.micros",
    "restate_rocksdb_db_write_seconds": "rocksdb.db.write.micros",
}
"""Summary name -> RocksDB statistics histogram in microseconds (label `db`)."""
DB_PARTITION_STORE = "db"
DB_LOG = "local-loglet"

# ---- SQL introspection (this server's own; upstream has no query metrics)
QUERIES = Counter(
    "restate_admin_query_requests", "Number of POST /query requests by answer status", ["status"]
)
QUERY_DURATION = QuantileSummary(
    "restate_admin_query_duration_seconds", "Latency of POST /query, from request to the answer's head"
)

# ---- Kafka ingress (upstream crates/ingress-kafka)
# Upstream's `restate.kafka_ingress.requests.total` and `restate.kafka_ingress.consumer.lag`.
KAFKA_INGRESS_REQUESTS = Counter(
    "restate_kafka_ingress_requests",
    "Kafka records made durable as invocations",
    ["subscription", "topic", "partition"],
)
KAFKA_INGRESS_CONSUMER_LAG = Gauge(
    "restate_kafka_ingress_consumer_lag",
    "Kafka consumer lag per partition: records on the broker not yet durable as invocations",
    ["subscription", "topic", "partition"],
)
# Ours: broker and consumer failures (retried with backoff) and backpressure, per subscription.
KAFKA_INGRESS_ERRORS = Counter(
    "restate_kafka_ingress_errors",
    "Kafka broker errors and consumer restarts",
    ["subscription", "error"],
)
KAFKA_INGRESS_PAUSED = Gauge(
    "restate_kafka_ingress_paused",
    "1 while a subscription's consumption is paused by backpressure",
    ["subscription"],
)

# ---- the Replay API (this server's own)
REPLAY_STREAMS = Gauge("restate_replay_streams", "Replay API streams open")
REPLAY_EVENTS_READ = Counter(
    "restate_replay_events_read", "State history events the Replay API read from the partition store"
)
