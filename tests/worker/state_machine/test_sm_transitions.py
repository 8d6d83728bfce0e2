"""The transition table: every (status, event) pair either moves as the table says or raises."""

from __future__ import annotations

import itertools

import pytest
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker.state_machine import InvalidTransition, transitions
from restate_server.worker.state_machine.transitions import TRANSITIONS, Event

PAIRS = list(itertools.product(Status, Event))


def _status(current: Status) -> InvocationStatus:
    return InvocationStatus(
        status=current,
        service="S",
        handler="h",
        key=None,
        service_ty="Service",
        handler_ty=None,
        created_at=0,
        modified_at=0,
        source=["ingress", None, None, None],
    )


@pytest.mark.parametrize(("current", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_every_pair_moves_by_the_table_or_raises_invalid_transition(current: Status, event: Event) -> None:
    st = _status(current)
    expected = TRANSITIONS.get((current, event))
    assert transitions.allowed(current, event) == (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            transitions.move(st, event)
        assert (caught.value.current, caught.value.event, caught.value.code) == (current, event, 571)
        assert st.status == current
    else:
        transitions.move(st, event)
        assert st.status == expected


def test_completed_is_left_only_by_a_purge_and_free_is_entered_only_by_one() -> None:
    assert {event for (current, event) in TRANSITIONS if current == Status.COMPLETED} == {Event.PURGE}
    assert {event for (_, event), to in TRANSITIONS.items() if to == Status.FREE} == {Event.PURGE}


def test_every_status_is_reachable_from_free() -> None:
    reached, frontier = {Status.FREE}, [Status.FREE]
    while frontier:
        current = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source == current and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_the_table_cannot_be_changed_at_runtime() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[Status.COMPLETED, Event.START] = Status.INVOKED  # type: ignore[index]
