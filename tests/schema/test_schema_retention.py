"""How long a completed invocation is kept: upstream's `compute_retention`, as a pure function."""

from __future__ import annotations

import pytest
from restate_server.schema.options import InvocationOptions, ResolvedRetryPolicy, Retention, retention

DAY, HOUR = 86_400.0, 3_600.0


def options(*, journal: float, idempotency: float = DAY, workflow: float = DAY) -> InvocationOptions:
    return InvocationOptions(
        inactivity_timeout=60,
        abort_timeout=60,
        retry=ResolvedRetryPolicy(
            initial_interval=1,
            exponentiation_factor=2,
            max_attempts=None,
            max_interval=None,
            on_max_attempts="pause",
        ),
        journal_retention=journal,
        idempotency_retention=idempotency,
        workflow_completion_retention=workflow,
        enable_lazy_state=False,
    )


@pytest.mark.parametrize(
    ("opts", "workflow_run", "idempotent", "expected"),
    [
        (options(journal=DAY), False, False, Retention(completion=DAY, journal=DAY)),
        (options(journal=0), False, False, Retention(completion=0, journal=0)),
        (options(journal=0), False, True, Retention(completion=DAY, journal=0)),
        (options(journal=2 * DAY, idempotency=HOUR), False, True, Retention(completion=HOUR, journal=HOUR)),
        (options(journal=2 * DAY, workflow=HOUR), True, False, Retention(completion=HOUR, journal=HOUR)),
    ],
    ids=["plain-keeps-journal", "plain-none", "idempotent-keeps-status", "journal-capped", "workflow-capped"],
)
def test_retention_follows_upstream(
    opts: InvocationOptions, workflow_run: bool, idempotent: bool, expected: Retention
) -> None:
    assert retention(opts, workflow_run=workflow_run, idempotent=idempotent) == expected
