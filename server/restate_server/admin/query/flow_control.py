"""Upstream 1.7's flow-control tables (virtual queues, scheduler, rules, locks, user limits), always empty.

Upstream fills them only with its experimental vqueues scheduler, which this server does not have;
the tables exist with upstream's names, columns and Arrow types so that `restate vqueues list`,
`restate rules list` and dashboards that query them get an empty answer, not a planning error.
"""

from __future__ import annotations

from restate_server.admin.query import tables
from restate_server.admin.query.tables import BOOL, DURATION, STR, TS, U32, U64

VQUEUES = tables.schema_of(
    ("partition_key", U64),
    ("id", STR),
    ("stage", STR),
    ("status", STR),
    ("has_lock", BOOL),
    ("run_at", TS),
    ("sequence_number", U64),
    ("entry_id", STR),
    ("entry_kind", STR),
    ("created_at", TS),
    ("transitioned_at", TS),
    ("num_attempts", U32),
    ("num_errors", U32),
    ("num_pauses", U32),
    ("num_suspensions", U32),
    ("num_yields", U32),
    ("first_attempt_at", TS),
    ("latest_attempt_at", TS),
    ("first_runnable_at", TS),
    ("deployment", STR),
)

VQUEUE_META = tables.schema_of(
    ("partition_key", U64),
    ("id", STR),
    ("is_active", BOOL),
    ("queue_is_paused", BOOL),
    ("service_name", STR),
    ("scope", STR),
    ("limit_key", STR),
    ("lock_name", STR),
    ("created_at", TS),
    ("last_enqueued_at", TS),
    ("last_start_at", TS),
    ("last_attempt_at", TS),
    ("last_finish_at", TS),
    ("avg_queue_duration", DURATION),
    ("avg_inbox_duration", DURATION),
    ("avg_run_duration", DURATION),
    ("avg_suspension_duration", DURATION),
    ("avg_end_to_end_duration", DURATION),
    ("avg_blocked_on_concurrency_rules", DURATION),
    ("avg_blocked_on_invoker_concurrency", DURATION),
    ("avg_blocked_on_invoker_throttling", DURATION),
    ("avg_blocked_on_lock", DURATION),
    ("num_inbox", U64),
    ("num_running", U64),
    ("num_suspended", U64),
    ("num_paused", U64),
    ("num_finished", U64),
)

RULES = tables.schema_of(
    ("pattern", STR),
    ("concurrency", U32),
    ("description", STR),
    ("disabled", BOOL),
    ("version", U32),
    ("last_modified", TS),
)

LOCKS = tables.schema_of(
    ("partition_key", U64),
    ("scope", STR),
    ("lock_name", STR),
    ("acquired_at", TS),
    ("acquired_by", STR),
)

SCHEDULER = tables.schema_of(
    ("partition_key", U64),
    ("id", STR),
    ("num_inbox", U64),
    ("status", STR),
    ("head_entry_id", STR),
    ("scheduled_at", TS),
    ("blocked_on", STR),
    ("blocked_on_json", STR),
    ("invoker_concurrency_block_duration", DURATION),
    ("throttling_rules_block_duration", DURATION),
    ("invoker_throttling_block_duration", DURATION),
    ("invoker_memory_block_duration", DURATION),
    ("concurrency_rules_block_duration", DURATION),
    ("lock_block_duration", DURATION),
    ("deployment_concurrency_block_duration", DURATION),
)

USER_LIMITS = tables.schema_of(
    ("partition_key", U64),
    ("scope", STR),
    ("l1", STR),
    ("l2", STR),
    ("level", STR),
    ("usage", U32),
    ("concurrency_limit", U32),
    ("rule_pattern", STR),
    ("available", U32),
    ("num_waiters", U64),
)

_BLOCKED_ON = (
    "invoker_concurrency",
    "throttling_rules",
    "invoker_throttling",
    "invoker_memory",
    "concurrency_rules",
    "lock",
    "deployment_concurrency",
)

VQUEUE_ENTRY_STATUS = tables.schema_of(
    ("partition_key", U64),
    ("entry_id", STR),
    ("vqueue_id", STR),
    ("stage", STR),
    ("status", STR),
    ("has_lock", BOOL),
    ("next_at", TS),
    ("sequence_number", U64),
    ("entry_kind", STR),
    ("created_at", TS),
    ("transitioned_at", TS),
    ("num_attempts", U32),
    ("num_errors", U32),
    ("num_pauses", U32),
    ("num_suspensions", U32),
    ("num_yields", U32),
    ("first_attempt_at", TS),
    ("latest_attempt_at", TS),
    ("first_runnable_at", TS),
    ("deployment", STR),
    ("needed_memory", U64),
    ("retry_attempts", U32),
    ("retry_count_since_last_stored_command", U32),
    *((f"latest_attempt_blocked_on_{what}", DURATION) for what in _BLOCKED_ON),
    *((f"total_blocked_on_{what}", DURATION) for what in _BLOCKED_ON),
)


def build_nothing(_src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """No vqueues scheduler runs here: no rows."""
    return []


TABLES = (
    tables.Table("sys_vqueues", VQUEUES, build_nothing, partitioned=False),
    tables.Table("sys_vqueue_meta", VQUEUE_META, build_nothing, partitioned=False),
    tables.Table("sys_rules", RULES, build_nothing, partitioned=False),
    tables.Table("sys_locks", LOCKS, build_nothing, partitioned=False),
    tables.Table("sys_scheduler", SCHEDULER, build_nothing, partitioned=False),
    tables.Table("sys_user_limits", USER_LIMITS, build_nothing, partitioned=False),
    tables.Table("sys_vqueue_entry_status", VQUEUE_ENTRY_STATUS, build_nothing, partitioned=False),
)
