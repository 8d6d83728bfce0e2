"""Why an attempt failed, with upstream's error codes (RT00xx) for `last_failure`."""

from __future__ import annotations


class AttemptError(Exception):
    """A failed attempt; retried according to the retry policy."""

    def __init__(
        self, code: str, message: str, *, retry_after: float | None = None, behavior: int = 0
    ) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.behavior = behavior  # ErrorMessage.behavior: 0 retry, 1 pause, 2 fail


class SdkError(AttemptError):
    """The SDK answered with an ErrorMessage (RT0007, journal mismatch RT0016, ...)."""

    def __init__(self, error_code: int, message: str, *, retry_after: float | None, behavior: int) -> None:
        code = {570: "RT0016", 571: "RT0012"}.get(error_code, "RT0007")
        super().__init__(code, f"{error_code} {message}", retry_after=retry_after, behavior=behavior)
        self.error_code = error_code
        self.error_message = message
