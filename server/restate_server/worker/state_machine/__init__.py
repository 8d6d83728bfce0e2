"""The partition processor's deterministic state machine.

`apply` takes one log record and the batch Context; it only reads and writes the transaction and
collects actions. Same log + same store = same result, which is what makes replay after a crash
safe. The record kinds are spread by subject: `invoker_effects` (what attempts produce),
`commands` (one function per journal command), `completions` (results arriving from elsewhere),
`requests` (admin requests), `lifecycle` (the invocation's life, over the `transitions` table).
"""

from __future__ import annotations

from restate_server.worker.state_machine.apply import apply
from restate_server.worker.state_machine.context import Context, ServiceLookup
from restate_server.worker.state_machine.errors import ApplyError, InvalidTransition, ProtocolViolation

__all__ = ["ApplyError", "Context", "InvalidTransition", "ProtocolViolation", "ServiceLookup", "apply"]
