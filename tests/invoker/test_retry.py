"""Backoff decisions: pure functions of the policy, the failed attempts and the SDK's hint."""

from __future__ import annotations

import pytest
from invoker_fakes import policy
from restate_server.invoker.retry import next_delay


@pytest.mark.parametrize(("failed", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)])
def test_exponential_backoff_capped_by_max_interval(failed: int, expected: float) -> None:
    assert next_delay(policy(max_attempts=None, max_interval=5.0), failed) == expected


def test_no_cap_without_max_interval() -> None:
    assert next_delay(policy(max_attempts=None, max_interval=None), 12) == 0.5 * 2**11


def test_gives_up_after_max_attempts_counting_the_first() -> None:
    assert next_delay(policy(max_attempts=3), 2) == 1.0
    assert next_delay(policy(max_attempts=3), 3) is None
    assert next_delay(policy(max_attempts=1), 1) is None
    assert next_delay(policy(max_attempts=3), 3, hint=0.1) is None  # a hint does not add attempts


def test_sdk_hint_replaces_the_computed_delay() -> None:
    assert next_delay(policy(), 4, hint=0.25) == 0.25
    assert next_delay(policy(), 1, hint=0.0) == 0.0
