"""What a new attempt replays: the invocation's journal, state and deployment, read from the store."""

from __future__ import annotations

from restate_server.config import Config
from restate_server.invoker.attempt import Snapshot
from restate_server.invoker.errors import AttemptError
from restate_server.rocksdb import Database
from restate_server.schema.model import ServiceType
from restate_server.schema.options import invocation_options
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage import journal, state, status
from restate_server.storage.transaction import Transaction


def read_snapshot(
    db: Database, registry: SchemaRegistry, config: Config, partition: int, invocation_id: bytes
) -> Snapshot | AttemptError | None:
    """The snapshot of a running invocation; None if it is not running, an error if it cannot run."""
    txn = Transaction(db)
    st = status.get(txn, partition, invocation_id)
    if st is None or st.status != status.Status.INVOKED:
        return None
    if st.deployment_id is not None:
        deployment = registry.deployment(st.deployment_id)
        if deployment is None:
            return AttemptError("RT0011", f"the pinned deployment {st.deployment_id} was removed")
    else:
        deployment = registry.latest_deployment(st.service)
        if deployment is None:
            return AttemptError("RT0011", f"no deployment found for service {st.service}")
    service = deployment.services.get(st.service)
    handler = service.handlers.get(st.handler) if service is not None else None
    if service is None or handler is None:
        return AttemptError("RT0011", f"deployment {deployment.id} has no handler {st.service}/{st.handler}")
    options = invocation_options(service, handler, config)
    cap = config.worker.invoker.max_protocol_version
    version = st.protocol_version or min(deployment.max_protocol_version, cap)
    keyed = service.ty != ServiceType.SERVICE
    entries = journal.read(txn, partition, invocation_id)
    state_entries = None
    if keyed and not options.enable_lazy_state and st.key is not None:
        state_entries = state.get_all(txn, partition, st.service, st.key)
    return Snapshot(
        partition=partition,
        invocation_id=invocation_id,
        service=st.service,
        handler=st.handler,
        key=st.key,
        keyed=keyed,
        journal=entries,
        commands=st.commands,
        state=state_entries,
        deployment=deployment,
        protocol_version=version,
        pinned=st.deployment_id is not None,
        options=options,
        idempotency_key=st.idempotency_key,
        created_at=st.created_at,
        callees=registry.handler,
    )
