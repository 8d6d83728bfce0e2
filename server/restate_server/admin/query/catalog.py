"""Every introspection table by its upstream name (``restate.public.<name>``)."""

from __future__ import annotations

from restate_server.admin.query import flow_control, history, journal, keyed, tables

TABLES: dict[str, tables.AnyTable] = {
    t.name: t
    for t in (
        tables.ColumnarTable("sys_invocation_status", tables.INVOCATION_STATUS, tables.build_status),
        tables.Table("sys_invocation_state", tables.INVOCATION_STATE, tables.build_state_of_invocations),
        tables.Table("sys_service", tables.SERVICE, tables.build_services, partitioned=False),
        tables.Table("sys_deployment", tables.DEPLOYMENT, tables.build_deployments, partitioned=False),
        tables.KeyedTable("state", keyed.STATE, keyed.build_state),
        tables.ColumnarTable("sys_journal", journal.JOURNAL, journal.build_journal),
        tables.Table("sys_journal_events", journal.JOURNAL_EVENTS, journal.build_events),
        tables.KeyedTable("sys_keyed_service_status", keyed.KEYED_SERVICE_STATUS, keyed.build_locks),
        tables.KeyedTable("sys_inbox", keyed.INBOX, keyed.build_inbox),
        tables.KeyedTable("sys_promise", keyed.PROMISE, keyed.build_promises),
        *flow_control.TABLES,
        tables.Table("sys_state_history", history.STATE_HISTORY, history.build_state_history),
    )
}
