"""Upstream 1.7's flow-control tables exist (empty, upstream's columns): the CLI's vqueue and rule listings work."""

from __future__ import annotations

import pytest
import restate_cli
from harness import Server

TABLES = {
    "sys_vqueues": 20,
    "sys_vqueue_meta": 27,
    "sys_rules": 6,
    "sys_locks": 5,
    "sys_scheduler": 15,
    "sys_user_limits": 10,
    "sys_vqueue_entry_status": 37,
}


@pytest.mark.parametrize("table", list(TABLES), ids=list(TABLES))
def test_flow_control_table_is_empty_with_upstreams_columns(server: Server, table: str) -> None:
    assert server.query(f"SELECT * FROM {table}") == []
    columns = server.query(f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'")
    assert len(columns) == TABLES[table]


def test_cli_lists_vqueues_and_rules(server: Server) -> None:
    vqueues = restate_cli.run(server, "vqueues", "list")
    assert vqueues.returncode == 0, vqueues.stdout + vqueues.stderr
    assert "No virtual queues found." in vqueues.stdout
    rules = restate_cli.run(server, "rules", "list")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "No rules defined." in rules.stdout
