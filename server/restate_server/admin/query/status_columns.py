"""``sys_invocation_status`` as Arrow columns cut straight out of the stored status rows.

The status row layout (``storage.status``: fixed header, offsets to the strings) lets every column
but the suspension lists be built for a whole chunk of rows with a few numpy operations; only the
columns a query reads are built. Rows in the older msgpack layout are re-encoded first (they are
rewritten by the processor on their next change, so few remain), and suspended rows' waiting lists
are decoded one by one (only suspended rows have them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from restate_server.admin.query import columns, scan
from restate_server.admin.query.columns import Chunk
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus

RESTATE_VERSION = "1.7.12"  # what `created_using_restate_version` reports, as /version does
_KEY_ID_OFFSET = 3  # table tag and partition id come first in every status key
SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
_STATUS_NAMES: list[str | None] = [s.value for s in status.STATUS_CODES]
_SUSPENDED = status.STATUS_CODES.index(status.Status.SUSPENDED)
_COMPLETED = status.STATUS_CODES.index(status.Status.COMPLETED)
_FAILURE = status.RESULT_KINDS.index("failure")
_FIXED_TYPES = {"B": "u1", "I": "<u4", "q": "<i8"}


def _current_layout(values: list[bytes]) -> Chunk:
    """The rows as a chunk, with any still in the older msgpack layout re-encoded in the current one."""
    chunk = Chunk.of(values)
    legacy = np.flatnonzero(chunk.u8(0) != status.FORMAT)
    if len(legacy) == 0:
        return chunk
    values = list(values)
    for row in legacy:
        values[row] = InvocationStatus.decode(values[row]).encode()
    return Chunk.of(values)


KEY_COLUMNS = frozenset({"partition_key", "id"})
"""Columns cut from the row keys; without them a scan need not read the keys."""


class Rows:
    """One chunk of status rows (and their keys, when read), read column by column on demand."""

    def __init__(self, values: Chunk, keys: Chunk | None) -> None:
        self.values = values
        self._keys = keys
        self.n = len(values)
        self._cache: dict[str, npt.NDArray[np.generic]] = {}

    @classmethod
    def read(cls, row_keys: list[bytes] | None, values: list[bytes]) -> Rows:
        """The rows as read from the store (keys None when they were not read)."""
        return cls(_current_layout(values), None if row_keys is None else Chunk.of(row_keys))

    def take(self, positions: columns.Ints) -> Rows:
        """The rows at ``positions`` (their bytes stay shared)."""
        return Rows(self.values.take(positions), None if self._keys is None else self._keys.take(positions))

    def fixed(self, name: str) -> npt.NDArray[np.generic]:
        if name not in self._cache:
            code = dict(status.FIXED)[name]
            self._cache[name] = self.values.fixed(status.FIXED_OFFSETS[name], _FIXED_TYPES[code])
        return self._cache[name]

    def present(self, name: str) -> npt.NDArray[np.bool_]:
        bit = np.uint32(1 << status.NULLABLE.index(name))
        flags = self.fixed("present").view(np.uint32)
        return np.asarray((flags & bit) != 0, np.bool_)

    def bounds(self, name: str) -> tuple[columns.Ints, columns.Ints]:
        """Where a variable field starts and ends in each row."""
        index = status.VARIABLE.index(name)
        end = self._end(index)
        begin = self._end(index - 1) if index else np.zeros(self.n, np.int64)
        return begin + status.VARIABLE_OFFSET, end + status.VARIABLE_OFFSET

    def _end(self, index: int) -> columns.Ints:
        name = f"end{index}"
        if name not in self._cache:
            self._cache[name] = self.values.fixed(status.ENDS_OFFSET + 4 * index, "<u4").astype(np.int64)
        return self._cache[name]  # type: ignore[return-value]

    def text(self, name: str, valid: npt.NDArray[np.bool_] | None = None) -> pa.Array:
        if valid is None and name in status.NULLABLE:
            valid = self.present(name)
        return self.values.strings(*self.bounds(name), valid)

    @property
    def keys(self) -> Chunk:
        if self._keys is None:
            raise ValueError("the keys of these rows were not read")
        return self._keys

    def raw_ids(self) -> npt.NDArray[np.uint8]:
        at = self.keys.starts + _KEY_ID_OFFSET
        return np.asarray(self.keys.data[at[:, None] + np.arange(24)], np.uint8)

    def keyed(self) -> npt.NDArray[np.bool_]:
        """Rows whose target has a key: a key is set and the service is not a plain service."""
        ty = self.text("service_ty")
        plain = np.asarray(pc.equal(ty, "Service").to_numpy(zero_copy_only=False), np.bool_)
        return self.present("key") & ~plain


Column = Callable[[Rows], pa.Array]


def _timestamp(name: str) -> Column:
    return lambda r: columns.numbers(r.fixed(name), _TS, r.present(name) if name in status.NULLABLE else None)


def _duration(name: str) -> Column:
    return lambda r: columns.numbers(r.fixed(name), _DURATION)


def _u32(name: str) -> Column:
    return lambda r: columns.numbers(
        r.fixed(name), pa.uint32(), r.present(name) if name in status.NULLABLE else None
    )


def _text(name: str) -> Column:
    return lambda r: r.text(name)


def _partition_key(r: Rows) -> pa.Array:
    return pa.array(r.keys.fixed(_KEY_ID_OFFSET, ">u8").astype(np.uint64), pa.uint64())


def _id(r: Rows) -> pa.Array:
    return columns.invocation_ids(r.raw_ids())


def _status(r: Rows) -> pa.Array:
    return columns.labels(r.fixed("status").view(np.uint8), _STATUS_NAMES)


def _completion_result(r: Rows) -> pa.Array:
    kind = r.fixed("result_kind")
    code = np.where((r.fixed("status") != _COMPLETED) | (kind == 0), 0, np.where(kind == _FAILURE, 2, 1))
    return columns.labels(code, [None, "success", "failure"])


def _completion_failure(r: Rows) -> pa.Array:
    failed = (r.fixed("status") == _COMPLETED) & (r.fixed("result_kind") == _FAILURE)
    message = r.text("failure_message", failed)
    code = pa.array(r.fixed("failure_code").astype(np.int64)).cast(pa.large_utf8())
    return pc.binary_join_element_wise(_text_scalar("["), code, _text_scalar("] "), message, _text_scalar(""))


def _target(r: Rows) -> pa.Array:
    service, handler = r.text("service"), r.text("handler")
    key = r.text("key", np.ones(r.n, np.bool_))
    keyed = pa.array(r.keyed())
    slash = _text_scalar("/")
    with_key = pc.binary_join_element_wise(service, key, handler, slash)
    return pc.if_else(keyed, with_key, pc.binary_join_element_wise(service, handler, slash))


def _target_key(r: Rows) -> pa.Array:
    return r.text("key", r.keyed())


def _service_ty(r: Rows) -> pa.Array:
    ty = r.text("service_ty")
    names = pa.array(list(SERVICE_TY), pa.large_utf8())
    index = pc.index_in(ty, value_set=names)
    mapped = pa.array(list(SERVICE_TY.values()), pa.large_utf8()).take(index)
    return pc.coalesce(mapped, ty)


def _text_scalar(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_utf8())


def _invoked_by(r: Rows) -> pa.Array:
    return pc.coalesce(r.text("source_kind"), _text_scalar("ingress"))


def _caller(restart: bool) -> Column:
    def build(r: Rows) -> pa.Array:
        kind = r.text("source_kind")
        is_restart = np.asarray(
            pc.fill_null(pc.equal(kind, "restart_as_new"), False).to_numpy(zero_copy_only=False), np.bool_
        )
        valid = r.present("caller_id") & (is_restart if restart else ~is_restart)
        rows = np.flatnonzero(valid)
        begin = r.values.starts[rows] + r.bounds("caller_id")[0][rows]
        ids = columns.invocation_ids(r.values.data[begin[:, None] + np.arange(24)])
        return ids.take(pa.array(np.cumsum(valid) - 1, pa.int64(), mask=~valid))

    return build


def _caller_service(r: Rows) -> pa.Array:
    parts = pc.split_pattern(r.text("caller_target"), "/", max_splits=1)
    return pc.list_element(parts, 0)


def _waiting(field: str) -> Column:
    """The completions or signals a suspended invocation waits for (decoded row by row)."""

    def build(r: Rows) -> pa.Array:
        suspended = np.flatnonzero(r.fixed("status") == _SUSPENDED)
        lists: list[list[int] | None] = [None] * r.n
        for row in suspended:
            start, length = int(r.values.starts[row]), int(r.values.lengths[row])
            st = InvocationStatus.decode(r.values.data[start : start + length].tobytes())
            if st.waiting is not None:
                lists[row] = list(getattr(st.waiting, field))
        return pa.array(lists, pa.list_(pa.uint32()))

    return build


_TS = pa.timestamp("ms", tz="+00:00")
_DURATION = pa.duration("ms")

COLUMNS: dict[str, Column] = {
    "partition_key": _partition_key,
    "id": _id,
    "status": _status,
    "completion_result": _completion_result,
    "completion_failure": _completion_failure,
    "target": _target,
    "target_service_name": _text("service"),
    "target_service_key": _target_key,
    "target_handler_name": _text("handler"),
    "target_service_ty": _service_ty,
    "idempotency_key": _text("idempotency_key"),
    "invoked_by": _invoked_by,
    "invoked_by_id": _caller(restart=False),
    "invoked_by_subscription_id": _text("subscription_id"),
    "invoked_by_service_name": _caller_service,
    "invoked_by_target": _text("caller_target"),
    "restarted_from": _caller(restart=True),
    "pinned_deployment_id": _text("deployment_id"),
    "pinned_service_protocol_version": _u32("protocol_version"),
    "journal_size": _u32("journal_length"),
    "journal_commands_size": _u32("commands"),
    "created_at": _timestamp("created_at"),
    "created_using_restate_version": lambda r: pa.array([RESTATE_VERSION] * r.n, pa.large_utf8()),
    "modified_at": _timestamp("modified_at"),
    "inboxed_at": _timestamp("inboxed_at"),
    "scheduled_at": _timestamp("scheduled_at"),
    "scheduled_start_at": _timestamp("execute_at"),
    "running_at": _timestamp("running_at"),
    "completed_at": _timestamp("completed_at"),
    "completion_retention": _duration("completion_retention"),
    "journal_retention": _duration("journal_retention"),
    "suspended_waiting_for_completions": _waiting("completions"),
    "suspended_waiting_for_signals": _waiting("signals"),
}
"""How each column is built; columns not listed are always null (upstream fills them from features
this server does not have: vqueues, scopes, limit keys, tracing)."""


def batch(
    rows: Rows, schema: pa.Schema, wanted: frozenset[str] | None, predicate: pc.Expression | None = None
) -> pa.RecordBatch:
    """The chunk as a record batch of ``schema``; columns outside ``wanted`` are nulls.

    With a ``predicate`` that can be judged without the ids, the rows it drops are dropped before the
    ids (the costliest columns: base 62 of 16 bytes) are cut: only the kept rows' are.
    """
    names = [f.name for f in schema if f.name in COLUMNS and (wanted is None or f.name in wanted)]
    built = {name: _built(rows, schema, name) for name in names if name not in KEY_COLUMNS}
    keyed = [name for name in names if name in KEY_COLUMNS]
    if predicate is not None and keyed and built:
        kept = scan.kept_rows(pa.RecordBatch.from_pydict(built), predicate, list(built))
        if kept is not None and len(kept) < rows.n:
            built = {name: array.take(kept) for name, array in built.items()}
            rows = rows.take(kept.to_numpy())
    built |= {name: _built(rows, schema, name) for name in keyed}
    return scan.full_batch(schema, rows.n, built)


def completed(schema: pa.Schema, n: int) -> pa.RecordBatch:
    """``n`` rows of completed invocations, with only their status."""
    codes = np.full(n, _COMPLETED, np.uint8)
    return scan.full_batch(
        schema, n, {"status": columns.labels(codes, _STATUS_NAMES).cast(schema.field("status").type)}
    )


def _built(rows: Rows, schema: pa.Schema, name: str) -> pa.Array:
    return COLUMNS[name](rows).cast(schema.field(name).type)
