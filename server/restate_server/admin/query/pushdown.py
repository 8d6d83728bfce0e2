"""What a query can possibly read of each table, so only that is taken from the store.

``restate invocations describe`` asks for one invocation's journal and status; reading every
journal of every retained invocation to answer it would cost time and memory proportional to the
whole store. The query is planned once against empty tables; DataFusion's optimizer pushes
projections into each table scan, limits into scans that have no filter above them, and filters
down to sit right above each scan. From that plan each table gets one :class:`~.scan.Scan`:

* the columns its scans read (the others come back as nulls);
* where a filter pins ``id`` to literals (``id = 'inv_…'``, ``id IN (…)``, ORs of those, ANDed with
  anything), only those ids, read by point lookups;
* the filter itself, as far as it compares columns with literals, as a pyarrow expression that
  drops rows batch by batch before DataFusion sees them (the parts it cannot translate are left
  out, which only lets more rows through);
* a limit, when the table's only scan carries one;
* for invocation status rows, whether the filter keeps no completed invocation (``status !=
  'completed'``, as ``restate invocations list`` asks): then only the index of unfinished ones is read;
* for a table joined on ``id`` (an inner join) with a table whose scan is restricted, the ids that
  scan yields (:func:`id_sources`): ``sys_journal j JOIN sys_invocation i ON i.id = j.id WHERE
  i.target = …`` reads only the journals of the matching invocations.

Anything else (no filter, another shape) means "read everything", so the result never changes:
DataFusion applies the query's own filters and limits to whatever comes back.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import Expr, LogicalPlan, SessionContext

from restate_server.admin.query.scan import Scan
from restate_server.ids import IdError, InvocationId

KEYED_BY_INVOCATION = frozenset(
    {"sys_invocation_status", "sys_invocation_state", "sys_journal", "sys_journal_events"}
)
"""Tables whose ``id`` column is the invocation id their rows are stored under."""

Ids = frozenset[bytes]


def scans(plan: LogicalPlan) -> dict[str, Scan]:
    """Per table the plan reads: one scan covering every way the plan reads it."""
    ids = id_restrictions(plan)
    columns = projections(plan)
    found = list(_scan_nodes(plan, None))
    count = collections.Counter(table for table, _v, _f in found)
    predicates: dict[str, pc.Expression | None] = {}
    limits: dict[str, int | None] = {}
    for table, variant, parent_filter in found:
        predicate = None if parent_filter is None else predicate_of(parent_filter)
        if table in predicates:  # read twice: a row either scan may keep must be kept
            previous = predicates[table]
            predicates[table] = None if previous is None or predicate is None else previous | predicate
        else:
            predicates[table] = predicate
        fetch = variant.fetch()
        limits[table] = (
            int(fetch) if fetch is not None and count[table] == 1 and parent_filter is None else None
        )
    filters = _filters_by_table(found)
    targets = {table: _target(table_filters) for table, table_filters in filters.items()}
    return {
        table: Scan(
            columns=columns.get(table),
            ids=ids.get(table),
            predicate=predicates[table],
            limit=limits[table],
            service=targets.get(table, (None, None))[0],
            service_key=targets.get(table, (None, None))[1],
            unfinished=table == STATUS_TABLE and all(_keeps_no_completed(f) for f in filters[table]),
        )
        for table in count
    }


STATUS_TABLE = "sys_invocation_status"


def _keeps_no_completed(expr: Expr | None) -> bool:
    """Whether the filter drops every completed invocation, whatever its other columns hold: one of
    its ANDed terms reads only ``status`` and keeps no row whose status is ``completed``."""
    if expr is None:
        return False
    context = SessionContext()
    completed = pa.record_batch({"status": pa.array(["completed"], pa.large_string())})
    context.register_record_batches(STATUS_TABLE, [[completed]])
    for term in _conjuncts(expr):
        try:
            # the plan's expressions are raw ones; DataFrame.filter takes the wrapped kind
            kept = context.table(STATUS_TABLE).filter(term if isinstance(term, Expr) else Expr(term)).count()
        except Exception:  # the term reads another column: it proves nothing
            continue
        if kept == 0:
            return True
    return False


def _conjuncts(expr: Expr) -> Iterator[Expr]:
    variant = _variant(expr)
    if type(variant).__name__ == "BinaryExpr" and str(variant.op()).upper() == "AND":
        yield from _conjuncts(variant.left())
        yield from _conjuncts(variant.right())
    else:
        yield expr


def _filters_by_table(found: list[tuple[str, Any, Expr | None]]) -> dict[str, list[Expr | None]]:
    out: dict[str, list[Expr | None]] = {}
    for table, _variant, parent_filter in found:
        out.setdefault(table, []).append(parent_filter)
    return out


def _target(filters: list[Expr | None]) -> tuple[str | None, str | None]:
    """(service, key) that every scan's filter pins with ``service_name = …`` / ``service_key = …``."""
    pinned = [_pinned(f) if f is not None else {} for f in filters]
    service = {p.get("service_name") for p in pinned}
    key = {p.get("service_key") for p in pinned}
    one_service = service.pop() if len(service) == 1 else None
    one_key = key.pop() if len(key) == 1 and one_service is not None else None
    return one_service, one_key


def _pinned(expr: Expr) -> dict[str, str]:
    """Columns an expression's top-level ANDs set equal to a string literal."""
    variant = _variant(expr)
    if type(variant).__name__ != "BinaryExpr":
        return {}
    op = str(variant.op()).upper()
    if op == "AND":
        return {**_pinned(variant.left()), **_pinned(variant.right())}
    if op != "=":
        return {}
    for column, value in ((variant.left(), variant.right()), (variant.right(), variant.left())):
        name, scalar = _column(column), _scalar(value)
        if name is not None and scalar is not None and isinstance(scalar.as_py(), str):
            return {name: scalar.as_py()}
    return {}


def _scan_nodes(plan: LogicalPlan, parent_filter: Expr | None) -> Iterator[tuple[str, Any, Expr | None]]:
    """(table, TableScan variant, the filter right above it) of every scan in the plan."""
    variant = plan.to_variant()
    kind = type(variant).__name__
    if kind == "TableScan":
        yield str(variant.table_name()).rsplit(".", 1)[-1], variant, parent_filter
        return
    predicate = variant.predicate() if kind == "Filter" else None
    for child in plan.inputs():
        yield from _scan_nodes(child, predicate)


_PASS_THROUGH = frozenset({"SubqueryAlias", "Projection", "Filter", "Sort", "Limit", "TableScan", "Join"})
"""Plan nodes through which a column named ``id`` still carries the ids of the table scanned below."""


def id_sources(plan: LogicalPlan) -> dict[str, str]:
    """Tables whose ids can be restricted to the ids another table's scan yields, by inner joins on id.

    ``{"sys_journal": "sys_invocation_status"}`` means: every row of ``sys_journal`` the query can
    use joins an ``id`` of the rows read from ``sys_invocation_status`` (its scan, restricted as
    :func:`scans` says), so the journal needs no other ids.
    """
    found: dict[str, str] = {}
    for node in _walk(plan):
        variant = node.to_variant()
        if type(variant).__name__ != "Join" or str(variant.join_type()) not in ("Inner", "JoinType.Inner"):
            continue
        if not any(_column(a) == "id" and _column(b) == "id" for a, b in variant.on()):
            continue
        left, right = node.inputs()[:2]
        a, b = _id_table(left), _id_table(right)
        if a is not None and b is not None and a != b:
            found.setdefault(a, b)
            found.setdefault(b, a)
    return found


def _walk(plan: LogicalPlan) -> Iterator[LogicalPlan]:
    yield plan
    for child in plan.inputs():
        yield from _walk(child)


def _id_table(plan: LogicalPlan) -> str | None:
    """The one table keyed by invocation whose ids the ``id`` column of this subtree carries, if any."""
    scanned = []
    for node in _walk(plan):
        variant = node.to_variant()
        kind = type(variant).__name__
        if kind not in _PASS_THROUGH:
            return None
        if kind == "Projection" and not all(
            _column(e) is not None for e in variant.projections() if _output_name(e) == "id"
        ):
            return None  # an `id` computed from something else
        if kind == "TableScan":
            scanned.append(str(variant.table_name()).rsplit(".", 1)[-1])
    keyed = [t for t in scanned if t in KEYED_BY_INVOCATION]
    if "sys_invocation_status" in keyed:
        return "sys_invocation_status"  # the view's id (its join keeps every status row)
    return keyed[0] if len(keyed) == 1 else None


def _output_name(expr: Expr) -> str:
    name: str = expr.schema_name()
    return name.rsplit(".", 1)[-1]


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MIRRORED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def predicate_of(expr: Expr) -> pc.Expression | None:
    """A pyarrow expression true wherever ``expr`` is (None: nothing to say, keep every row).

    Only comparisons of a column with a literal, null tests, IN lists and their AND/OR/NOT are
    translated; an AND keeps its translatable side (a weaker test), an OR needs both sides, and a
    NOT needs an exact translation of what it negates.
    """
    translated = _translate(expr)
    return None if translated is None else translated[0]


def _translate(expr: Expr) -> tuple[pc.Expression, bool] | None:
    """(expression, whether it is exact rather than only implied by ``expr``), or None."""
    variant = _variant(expr)
    kind = type(variant).__name__
    if kind == "BinaryExpr":
        op = str(variant.op()).upper()
        left, right = variant.left(), variant.right()
        if op in ("AND", "OR"):
            a, b = _translate(left), _translate(right)
            if a is not None and b is not None:
                return (a[0] & b[0] if op == "AND" else a[0] | b[0]), a[1] and b[1]
            if op == "AND" and (a or b) is not None:
                return (a or b)[0], False  # type: ignore[index]
            return None
        if op in _COMPARISONS:
            for column, value, side in ((left, right, op), (right, left, _MIRRORED[op])):
                name, scalar = _column(column), _scalar(value)
                if name is not None and scalar is not None:
                    return _COMPARISONS[side](pc.field(name), scalar), True
        return None
    if kind in ("IsNull", "IsNotNull"):
        name = _column(variant.expr())
        if name is None:
            return None
        test = pc.field(name).is_null()
        return (test if kind == "IsNull" else ~test), True
    if kind == "InList":
        name = _column(variant.expr())
        values = [_scalar(item) for item in variant.list()]
        if name is None or not values or any(v is None for v in values):
            return None
        members = pc.field(name).isin(pa.array([v.as_py() for v in values if v is not None]))
        # NOT IN is false for a null member or operand in SQL; isin says true/false: keep it exact only positive
        return (~members, False) if variant.negated() else (members, True)
    if kind == "Not":
        inner = _translate(variant.expr())
        return (~inner[0], True) if inner is not None and inner[1] else None
    return None


def _variant(expr: Expr) -> Any:
    """The expression's node, or None for kinds the Python API cannot show (scalar functions…)."""
    try:
        return expr.to_variant()
    except ValueError:  # "Converting Expr::… to a Python object is not implemented"
        return None


def _column(expr: Expr) -> str | None:
    variant = _variant(expr)
    if type(variant).__name__ != "Column":
        return None
    name: str = variant.name()
    return name


def _scalar(expr: Expr) -> pa.Scalar | None:
    """A literal that pyarrow compares like DataFusion does: strings, numbers, booleans."""
    if type(_variant(expr)).__name__ != "Literal":
        return None
    value: Any = expr.python_value()
    if not isinstance(value, pa.Scalar) or not value.is_valid:
        return None
    ty = value.type
    if (
        pa.types.is_string(ty)
        or pa.types.is_large_string(ty)
        or pa.types.is_integer(ty)
        or pa.types.is_boolean(ty)
    ):
        return value
    return None


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
    variant = _variant(expr)
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
                    return parse_ids({text})
        return None
    if kind == "InList" and not variant.negated() and _is_id_column(variant.expr()):
        values = [_literal(item) for item in variant.list()]
        if all(v is not None for v in values):
            return parse_ids({v for v in values if v is not None})
    return None


def _is_id_column(expr: Expr) -> bool:
    return _column(expr) == "id"


def _literal(expr: Expr) -> str | None:
    if type(_variant(expr)).__name__ != "Literal":
        return None
    value: Any = expr.python_value()
    value = value.as_py() if hasattr(value, "as_py") else value
    return value if isinstance(value, str) else None


def parse_ids(texts: set[str]) -> Ids:
    """Stored forms of the well-formed ids; a malformed id matches no row."""
    out = set()
    for text in texts:
        try:
            out.add(InvocationId.parse(text).to_bytes())
        except IdError:
            continue
    return frozenset(out)
