"""The object store: objects by type and name, one global resourceVersion, and the event history.

Everything here is synchronous: the server is one asyncio loop, so a store call is atomic. A watcher
registers a queue and receives every event committed after it registered; the bounded history lets a
watch resume from an older resourceVersion (or get 410 Gone when it fell off the end).
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

JsonObj = dict[str, Any]
TypeKey = tuple[str, str]

HISTORY_LIMIT = 20_000
"""Events kept for watch resumption; the real API server keeps a time window (about 75 s by default)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: TypeKey
    obj: JsonObj
    old: JsonObj | None


def meta(obj: JsonObj) -> JsonObj:
    md: JsonObj = obj.setdefault("metadata", {})
    return md


class Store:
    def __init__(self) -> None:
        self.rv = 0
        self._objects: dict[TypeKey, dict[tuple[str, str], JsonObj]] = {}
        self.history: deque[Event] = deque(maxlen=HISTORY_LIMIT)
        self.evicted_rv = 0
        """Newest resourceVersion no longer in the history: a watch from before it gets 410."""
        self._watchers: set[asyncio.Queue[Event | None]] = set()

    # reads -------------------------------------------------------------------------------------
    def get(self, key: TypeKey, namespace: str, name: str) -> JsonObj | None:
        return self._objects.get(key, {}).get((namespace, name))

    def objects_of(self, key: TypeKey, namespace: str | None = None) -> list[JsonObj]:
        objs = self._objects.get(key, {})
        return [o for (ns, _), o in sorted(objs.items()) if namespace is None or ns == namespace]

    def keys(self) -> list[TypeKey]:
        return list(self._objects)

    def everything(self) -> list[tuple[TypeKey, JsonObj]]:
        return [(k, o) for k, objs in self._objects.items() for o in objs.values()]

    # writes ------------------------------------------------------------------------------------
    def put(self, key: TypeKey, obj: JsonObj, *, old: JsonObj | None) -> JsonObj:
        """Store ``obj`` (new or replacing ``old``) under a fresh resourceVersion and announce it."""
        self.rv += 1
        md = meta(obj)
        md["resourceVersion"] = str(self.rv)
        self._objects.setdefault(key, {})[(md.get("namespace", ""), md["name"])] = obj
        self._emit(Event(rv=self.rv, type="ADDED" if old is None else "MODIFIED", key=key, obj=obj, old=old))
        return obj

    def remove(self, key: TypeKey, obj: JsonObj) -> JsonObj:
        """Delete ``obj``; the DELETED event carries a new resourceVersion, as the real server's does."""
        md = meta(obj)
        self._objects.get(key, {}).pop((md.get("namespace", ""), md["name"]), None)
        self.rv += 1
        gone = copy.deepcopy(obj)
        meta(gone)["resourceVersion"] = str(self.rv)
        self._emit(Event(rv=self.rv, type="DELETED", key=key, obj=gone, old=obj))
        return gone

    def _emit(self, event: Event) -> None:
        if len(self.history) == self.history.maxlen:
            self.evicted_rv = self.history[0].rv
        self.history.append(event)
        for q in self._watchers:
            q.put_nowait(event)

    # watching ----------------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue()
        self._watchers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event | None]) -> None:
        self._watchers.discard(q)

    def close_watches(self) -> None:
        for q in self._watchers:
            q.put_nowait(None)

    def events_since(self, rv: int) -> list[Event] | None:
        """Events after ``rv``, or None when some of them were evicted (the caller answers 410)."""
        if rv < self.evicted_rv:
            return None
        return [e for e in self.history if e.rv > rv]
