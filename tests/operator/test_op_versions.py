"""Version planning as pure functions: what to keep, drain, retire and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from restate_operator.admin_client import AdminView, Deployment, Invocations
from restate_operator.models import DeletionPolicy
from restate_operator.versions import (
    Decision,
    Policy,
    Step,
    Version,
    blocking,
    needs_registration,
    next_check,
    plan,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = Policy(drain_delay=timedelta(seconds=300), history_limit=2)


def v(
    name: str, age: int, replicas: int = 1, dp: str | None = None, remove_at: datetime | None = None
) -> Version:
    return Version(
        name=name,
        created=NOW - timedelta(minutes=age),
        replicas=replicas,
        deployment_id=dp,
        remove_at=remove_at,
    )


def view(
    latest: dict[str, str],
    pinned: dict[str, int] | None = None,
    unpinned: dict[str, int] | None = None,
    services: dict[str, set[str]] | None = None,
    query_ok: bool = True,
) -> AdminView:
    services = services or {dp: {svc for svc, d in latest.items() if d == dp} for dp in set(latest.values())}
    deployments = {
        dp: Deployment(id=dp, uri=f"http://{dp}", services=frozenset(s)) for dp, s in services.items()
    }
    invocations = Invocations(pinned=pinned or {}, unpinned=unpinned or {}) if query_ok else None
    return AdminView(deployments=deployments, latest_for=latest, invocations=invocations)


def steps(decisions: list[Decision]) -> dict[str, Step]:
    return {d.version.name: d.step for d in decisions}


def test_current_version_is_always_kept() -> None:
    decisions = plan([v("a", 1, dp="dp_a")], current="a", view=view({}), now=NOW, policy=POLICY)
    assert steps(decisions) == {"a": Step.KEEP}


def test_old_version_kept_while_latest_for_a_service() -> None:
    old = v("a", 10, dp="dp_a")
    decisions = plan([old, v("b", 1)], current="b", view=view({"Greeter": "dp_a"}), now=NOW, policy=POLICY)
    assert steps(decisions)["a"] is Step.KEEP
    assert "latest" in decisions[1].reason


def test_old_version_kept_while_invocations_are_pinned_to_it() -> None:
    decisions = plan(
        [v("a", 10, dp="dp_a"), v("b", 1, dp="dp_b")],
        current="b",
        view=view({"Greeter": "dp_b"}, pinned={"dp_a": 3}),
        now=NOW,
        policy=POLICY,
    )
    assert steps(decisions)["a"] is Step.KEEP
    assert "3 unfinished" in decisions[1].reason


def test_unknown_invocation_counts_keep_every_registered_version() -> None:
    decisions = plan(
        [v("a", 10, dp="dp_a"), v("b", 1, dp="dp_b")],
        current="b",
        view=view({"Greeter": "dp_b"}, query_ok=False),
        now=NOW,
        policy=POLICY,
    )
    assert steps(decisions)["a"] is Step.KEEP


def test_unused_old_version_is_scheduled_then_waits_then_retires() -> None:
    admin = view({"Greeter": "dp_b"})
    first = plan(
        [v("a", 10, dp="dp_a"), v("b", 1, dp="dp_b")], current="b", view=admin, now=NOW, policy=POLICY
    )
    drain = next(d for d in first if d.version.name == "a")
    assert drain.step is Step.SCHEDULE_DRAIN
    assert drain.remove_at == NOW + timedelta(seconds=300)
    waiting = v("a", 10, dp="dp_a", remove_at=drain.remove_at)
    second = plan([waiting], current="b", view=admin, now=NOW + timedelta(seconds=10), policy=POLICY)
    assert steps(second) == {"a": Step.WAIT}
    assert next_check(second, NOW) == drain.remove_at
    third = plan([waiting], current="b", view=admin, now=NOW + timedelta(seconds=301), policy=POLICY)
    assert steps(third) == {"a": Step.RETIRE}


def test_draining_version_back_in_use_is_kept_again() -> None:
    draining = v("a", 10, dp="dp_a", remove_at=NOW + timedelta(seconds=5))
    decisions = plan(
        [draining], current="b", view=view({"Greeter": "dp_b"}, pinned={"dp_a": 1}), now=NOW, policy=POLICY
    )
    assert decisions[0].step is Step.KEEP  # the caller clears remove-version-at on KEEP


def test_never_registered_old_version_retires_at_once() -> None:
    decisions = plan(
        [v("a", 10), v("b", 1, dp="dp_b")],
        current="b",
        view=view({"Greeter": "dp_b"}),
        now=NOW,
        policy=POLICY,
    )
    assert steps(decisions)["a"] is Step.RETIRE


def test_revision_history_limit_keeps_newest_retired_versions() -> None:
    retired = [v(f"r{i}", 10 + i, replicas=0) for i in range(4)]
    decisions = plan(
        [*retired, v("b", 1, dp="dp_b")], current="b", view=view({"Greeter": "dp_b"}), now=NOW, policy=POLICY
    )
    assert steps(decisions) == {
        "b": Step.KEEP,
        "r0": Step.NOTHING,
        "r1": Step.NOTHING,
        "r2": Step.DELETE,
        "r3": Step.DELETE,
    }


def test_zero_history_limit_deletes_every_retired_version() -> None:
    decisions = plan(
        [v("r", 5, replicas=0)],
        current="b",
        view=view({}),
        now=NOW,
        policy=Policy(drain_delay=timedelta(0), history_limit=0),
    )
    assert steps(decisions) == {"r": Step.DELETE}


def test_deletion_ignores_latest_and_retires_unused_versions_at_once() -> None:
    policy = Policy(drain_delay=timedelta(seconds=300), history_limit=2, deleting_since=NOW)
    decisions = plan(
        [v("b", 1, dp="dp_b"), v("r", 5, replicas=0)],
        current=None,
        view=view({"Greeter": "dp_b"}),
        now=NOW,
        policy=policy,
    )
    assert steps(decisions) == {"b": Step.RETIRE, "r": Step.DELETE}
    assert blocking(decisions) == []


def test_deletion_waits_for_pinned_and_unpinned_invocations() -> None:
    policy = Policy(drain_delay=timedelta(seconds=300), history_limit=2, deleting_since=NOW)
    pinned = plan(
        [v("b", 1, dp="dp_b")],
        current=None,
        view=view({"Greeter": "dp_b"}, pinned={"dp_b": 1}),
        now=NOW,
        policy=policy,
    )
    unpinned = plan(
        [v("b", 1, dp="dp_b")],
        current=None,
        view=view({"Greeter": "dp_b"}, unpinned={"Greeter": 2}),
        now=NOW,
        policy=policy,
    )
    assert steps(pinned) == steps(unpinned) == {"b": Step.KEEP}
    assert "not yet pinned" in unpinned[0].reason
    assert len(blocking(unpinned)) == 1


@pytest.mark.parametrize(
    ("deletion_policy", "elapsed", "expected"),
    [
        (DeletionPolicy.DRAIN, 10_000, Step.KEEP),
        (DeletionPolicy.DRAIN_THEN_FORCE, 59, Step.KEEP),
        (DeletionPolicy.DRAIN_THEN_FORCE, 60, Step.RETIRE),
        (DeletionPolicy.FORCE, 0, Step.RETIRE),
    ],
    ids=["drain-forever", "drain-then-force-before", "drain-then-force-after", "force"],
)
def test_deletion_policy_and_timeout(deletion_policy: DeletionPolicy, elapsed: int, expected: Step) -> None:
    policy = Policy(
        drain_delay=timedelta(0),
        history_limit=1,
        deleting_since=NOW,
        deletion_policy=deletion_policy,
        delete_timeout=timedelta(seconds=60),
    )
    decisions = plan(
        [v("b", 1, dp="dp_b")],
        current=None,
        view=view({"Greeter": "dp_b"}, pinned={"dp_b": 1}),
        now=NOW + timedelta(seconds=elapsed),
        policy=policy,
    )
    assert steps(decisions) == {"b": expected}


def test_registration_needed_for_new_vanished_and_superseded_versions() -> None:
    admin = view({"Greeter": "dp_b"}, services={"dp_a": {"Greeter"}, "dp_b": {"Greeter"}})
    assert needs_registration(v("n", 0), admin) == (True, False)
    assert needs_registration(v("g", 0, dp="dp_gone"), admin) == (True, False)
    assert needs_registration(v("b", 0, dp="dp_b"), admin) == (False, False)
    # rollback: a still-registered older version must become the latest again, with force
    assert needs_registration(v("a", 0, dp="dp_a"), admin) == (True, True)
