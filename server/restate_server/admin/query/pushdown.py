"""Which invocation ids a query can possibly read, so only their rows are taken from the store.

``restate invocations describe`` asks for one invocation's journal and status; reading every
journal of every retained invocation to answer it would cost time and memory proportional to the
whole store. The query is planned once against empty tables; DataFusion's optimizer pushes filters
down to sit right above each table scan, and where such a filter pins ``id`` to literals
(``id = 'inv_…'``, ``id IN (…)``, ORs of those, ANDed with anything), only those ids are read.
Anything else (no filter, another shape) means "read everything", so the result never changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datafusion import Expr, LogicalPlan

from restate_server.ids import IdError, InvocationId

KEYED_BY_INVOCATION = frozenset(
    {"sys_invocation_status", "sys_invocation_state", "sys_journal", "sys_journal_events"}
)
"""Tables whose ``id`` column is the invocation id their rows are stored under."""

Ids = frozenset[bytes]


def id_restrictions(plan: LogicalPlan) -> dict[str, Ids]:
    """Per table keyed by invocation id: the only ids any of its scans can let through."""
    found: dict[str, Ids | None] = {}
    for table, ids in _scans(plan, None):
        if table not in KEYED_BY_INVOCATION:
            continue
        previous = found.get(table, frozenset())
        found[table] = None if ids is None or previous is None else previous | ids
    return {table: ids for table, ids in found.items() if ids is not None}


def projections(plan: LogicalPlan) -> dict[str, frozenset[str]]:
    """Per table: the columns its scans read (tables with an unprojected scan are left out).

    Building a column of Python values for every retained invocation is most of a query's cost,
    so columns no scan reads are materialised as nulls.
    """
    found: dict[str, frozenset[str] | None] = {}
    for table, columns in _projected(plan):
        previous = found.get(table, frozenset())
        found[table] = None if columns is None or previous is None else previous | columns
    return {table: columns for table, columns in found.items() if columns is not None}


def _projected(plan: LogicalPlan) -> Iterator[tuple[str, frozenset[str] | None]]:
    variant = plan.to_variant()
    if type(variant).__name__ == "TableScan":
        table = str(variant.table_name()).rsplit(".", 1)[-1]
        projection = variant.projection()
        yield table, None if projection is None else frozenset(name for _index, name in projection)
        return
    for child in plan.inputs():
        yield from _projected(child)


def _scans(plan: LogicalPlan, parent_filter: Expr | None) -> Iterator[tuple[str, Ids | None]]:
    variant = plan.to_variant()
    kind = type(variant).__name__
    if kind == "TableScan":
        table = str(variant.table_name()).rsplit(".", 1)[-1]
        yield table, None if parent_filter is None else _ids(parent_filter)
        return
    predicate = variant.predicate() if kind == "Filter" else None
    for child in plan.inputs():
        yield from _scans(child, predicate)


def _ids(expr: Expr) -> Ids | None:
    """The ids a predicate admits, or None when it does not pin ``id`` down."""
    variant = expr.to_variant()
    kind = type(variant).__name__
    if kind == "BinaryExpr":
        op = str(variant.op()).upper()
        left, right = variant.left(), variant.right()
        if op == "AND":
            a, b = _ids(left), _ids(right)
            return a & b if a is not None and b is not None else a if a is not None else b
        if op == "OR":
            a, b = _ids(left), _ids(right)
            return a | b if a is not None and b is not None else None
        if op == "=":
            for column, value in ((left, right), (right, left)):
                if _is_id_column(column) and (text := _literal(value)) is not None:
                    return _parse({text})
        return None
    if kind == "InList" and not variant.negated() and _is_id_column(variant.expr()):
        values = [_literal(item) for item in variant.list()]
        if all(v is not None for v in values):
            return _parse({v for v in values if v is not None})
    return None


def _is_id_column(expr: Expr) -> bool:
    variant = expr.to_variant()
    return type(variant).__name__ == "Column" and variant.name() == "id"


def _literal(expr: Expr) -> str | None:
    if type(expr.to_variant()).__name__ != "Literal":
        return None
    value: Any = expr.python_value()
    value = value.as_py() if hasattr(value, "as_py") else value
    return value if isinstance(value, str) else None


def _parse(texts: set[str]) -> Ids:
    """Stored forms of the well-formed ids; a malformed id matches no row."""
    out = set()
    for text in texts:
        try:
            out.add(InvocationId.parse(text).to_bytes())
        except IdError:
            continue
    return frozenset(out)
