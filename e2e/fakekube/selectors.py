"""Label and field selectors, parsed once into predicates (pure: no I/O, no state)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``in (…)`` parentheses."""
    terms: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    if m := _SET_RE.match(term):
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_RE.match(term):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS_RE.match(term):
        negate, key = m.group(1) == "!", m.group(2)
        return lambda labels: (key in labels) != negate
    raise bad_request(f"unable to parse requirement: {term!r}")


def label_selector(text: str | None) -> Predicate:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h`` → a predicate over whole objects."""
    if not text:
        return lambda _obj: True
    terms = [_label_term(t) for t in _split_terms(text)]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in terms)

    return match


def dotted(obj: Any, path: str) -> Any:
    """The value at a dotted path such as ``metadata.name`` (None when absent)."""
    for part in path.strip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def field_selector(text: str | None) -> Predicate:
    """``metadata.name=x,status.phase!=Running`` → a predicate; any dotted path is accepted."""
    if not text:
        return lambda _obj: True
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m is None:
            raise bad_request(f"invalid field selector: {term!r}")
        terms.append((m.group(1), m.group(2) == "!=", m.group(3)))

    def match(obj: dict[str, Any]) -> bool:
        for path, negate, value in terms:
            actual = dotted(obj, path)
            actual_text = "" if actual is None else str(actual)
            if (actual_text == value) == negate:
                return False
        return True

    return match


def selector_from_label_selector(sel: dict[str, Any] | None) -> str:
    """A ``LabelSelector`` object (matchLabels, matchExpressions) rendered as selector text."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
