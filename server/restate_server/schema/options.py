"""The effective options of one invocation: handler override, else service override, else server default.

Called for every invocation, so results are cached per (service record, handler record, config):
schema records are immutable and replaced on change, which makes their identity a safe cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from restate_server.schema import model


class RetryDefaults(Protocol):
    """The server's default retry policy (``Config.default_retry_policy``)."""

    @property
    def initial_interval(self) -> float: ...
    @property
    def exponentiation_factor(self) -> float: ...
    @property
    def max_attempts(self) -> int | None: ...
    @property
    def max_interval(self) -> float: ...
    @property
    def on_max_attempts(self) -> str: ...


class _InvokerDefaults(Protocol):
    @property
    def inactivity_timeout(self) -> float: ...
    @property
    def abort_timeout(self) -> float: ...


class _WorkerDefaults(Protocol):
    @property
    def invoker(self) -> _InvokerDefaults: ...


class ServerDefaults(Protocol):
    """The part of ``restate_server.config.Config`` that option resolution reads."""

    @property
    def default_retry_policy(self) -> RetryDefaults: ...
    @property
    def default_journal_retention(self) -> float: ...
    @property
    def default_idempotency_retention(self) -> float: ...
    @property
    def default_workflow_completion_retention(self) -> float: ...
    @property
    def worker(self) -> _WorkerDefaults: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedRetryPolicy:
    """A retry policy with nothing left to inherit; intervals in seconds.

    ``max_attempts`` counts attempts, the first one included; ``None`` retries forever.
    """

    initial_interval: float
    exponentiation_factor: float
    max_attempts: int | None
    max_interval: float | None
    on_max_attempts: str  # "pause" | "kill"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationOptions:
    """Everything the invoker and processor need to know about how to run one handler (seconds)."""

    inactivity_timeout: float
    abort_timeout: float
    retry: ResolvedRetryPolicy
    journal_retention: float
    idempotency_retention: float
    workflow_completion_retention: float
    enable_lazy_state: bool


def resolve_retry_policy(defaults: RetryDefaults, *overrides: model.RetryPolicy) -> ResolvedRetryPolicy:
    """Layer retry overrides (service, then handler) over the server default."""
    initial = defaults.initial_interval
    factor = defaults.exponentiation_factor
    attempts = defaults.max_attempts
    max_interval: float | None = defaults.max_interval
    on_max = str(defaults.on_max_attempts).lower()
    for o in overrides:
        initial = o.initial_interval if o.initial_interval is not None else initial
        factor = o.exponentiation_factor if o.exponentiation_factor is not None else factor
        attempts = o.max_attempts if o.max_attempts is not None else attempts
        max_interval = o.max_interval if o.max_interval is not None else max_interval
        on_max = o.on_max_attempts.lower() if o.on_max_attempts is not None else on_max
    return ResolvedRetryPolicy(
        initial_interval=initial,
        exponentiation_factor=factor,
        max_attempts=attempts,
        max_interval=max_interval,
        on_max_attempts=on_max,
    )


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the last value is a server default and never None")


def _compute(service: model.Service, handler: model.Handler, config: ServerDefaults) -> InvocationOptions:
    invoker = config.worker.invoker
    lazy = handler.enable_lazy_state if handler.enable_lazy_state is not None else service.enable_lazy_state
    return InvocationOptions(
        inactivity_timeout=_first(
            handler.inactivity_timeout, service.inactivity_timeout, invoker.inactivity_timeout
        ),
        abort_timeout=_first(handler.abort_timeout, service.abort_timeout, invoker.abort_timeout),
        retry=resolve_retry_policy(config.default_retry_policy, service.retry_policy, handler.retry_policy),
        journal_retention=_first(
            handler.journal_retention, service.journal_retention, config.default_journal_retention
        ),
        idempotency_retention=_first(
            handler.idempotency_retention, service.idempotency_retention, config.default_idempotency_retention
        ),
        workflow_completion_retention=_first(
            handler.workflow_completion_retention,
            service.workflow_completion_retention,
            config.default_workflow_completion_retention,
        ),
        enable_lazy_state=bool(lazy),
    )


_CACHE_LIMIT = 4096  # distinct (service, handler) revisions alive at once; far above real schemas
_cache: dict[
    tuple[int, int, int], tuple[model.Service, model.Handler, ServerDefaults, InvocationOptions]
] = {}


def invocation_options(
    service: model.Service, handler: model.Handler, config: ServerDefaults
) -> InvocationOptions:
    """The effective options for invoking ``handler`` of ``service`` under ``config``."""
    key = (id(service), id(handler), id(config))
    hit = _cache.get(key)
    # The stored references keep the objects alive, so an id cannot be reused while its entry exists.
    if hit is not None and hit[0] is service and hit[1] is handler and hit[2] is config:
        return hit[3]
    options = _compute(service, handler, config)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = (service, handler, config, options)
    return options


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How long a completed invocation keeps its status (`completion`) and its journal (seconds)."""

    completion: float
    journal: float


def retention(options: InvocationOptions, *, workflow_run: bool, idempotent: bool) -> Retention:
    """Upstream's `InvocationTargetMetadata::compute_retention`.

    A workflow run or an idempotent call keeps its completion for the workflow or idempotency
    retention, and its journal at most as long (the status must outlive the journal). Any other
    call keeps its completion exactly as long as its journal, and nothing when that is zero.
    """
    if workflow_run or idempotent:
        completion = options.workflow_completion_retention if workflow_run else options.idempotency_retention
        return Retention(completion=completion, journal=min(options.journal_retention, completion))
    return Retention(completion=options.journal_retention, journal=options.journal_retention)
