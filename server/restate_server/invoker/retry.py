"""Retry decisions for failed attempts: pure functions of the policy and the attempt count."""

from __future__ import annotations

from restate_server.schema.options import ResolvedRetryPolicy


def next_delay(policy: ResolvedRetryPolicy, failed_attempts: int, hint: float | None = None) -> float | None:
    """Seconds to wait before the next attempt, or None when the policy gives up.

    `failed_attempts` counts the attempts made so far (>= 1); `max_attempts` counts the first
    attempt too, so max_attempts=1 means no retry. `hint` is the SDK's next_retry_delay, which
    overrides the computed delay once.
    """
    if policy.max_attempts is not None and failed_attempts >= policy.max_attempts:
        return None
    if hint is not None:
        return hint
    delay = policy.initial_interval * policy.exponentiation_factor ** (failed_attempts - 1)
    if policy.max_interval is not None:
        delay = min(delay, policy.max_interval)
    return delay
