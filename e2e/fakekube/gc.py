"""Garbage collection: owner references, foreground deletion and namespace termination.

The real garbage collector is a controller that reacts to the watch; this one sweeps the whole store
after each deletion (debounced) and once a second. A sweep deletes objects whose owners are all gone,
deletes the dependents of objects in foreground deletion (and drops their ``foregroundDeletion``
finalizer once none are left), and empties terminating namespaces before removing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging

from .objects import NAMESPACES, Objects
from .store import JsonObj, meta

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0
"""Seconds between sweeps when nothing is deleted (owners referenced before they existed, etc.)."""
DEBOUNCE = 0.02
"""Seconds to let a burst of deletions land before sweeping, so one sweep sees them all."""
MAX_ROUNDS = 50
"""Sweeps per wake-up, at most; each round handles one level of an ownership tree."""


def sweep(objects: Objects) -> bool:
    """One pass over the store; returns True if it changed anything."""
    store = objects.store
    everything = store.everything()
    alive = {meta(obj).get("uid") for _, obj in everything}
    changed = False
    for key, obj in everything:
        md = meta(obj)
        if store.get(key, md.get("namespace", ""), md["name"]) is not obj:
            continue  # replaced or removed earlier in this sweep
        refs = md.get("ownerReferences") or []
        if refs and not md.get("deletionTimestamp") and not any(r.get("uid") in alive for r in refs):
            objects.delete_stored(key, obj)
            changed = True
            continue
        if md.get("deletionTimestamp") and "foregroundDeletion" in (md.get("finalizers") or []):
            changed |= _foreground(objects, key, obj)
        if key == NAMESPACES and md.get("deletionTimestamp"):
            changed |= _terminate_namespace(objects, obj)
    return changed


def _foreground(objects: Objects, key: tuple[str, str], obj: JsonObj) -> bool:
    deps = objects.dependents(meta(obj)["uid"])
    if deps:
        pending = [(k, d) for k, d in deps if not meta(d).get("deletionTimestamp")]
        for dep_key, dep in pending:
            objects.delete_stored(dep_key, dep, policy="Foreground")
        return bool(pending)
    rt = objects.registry.by_key(key)
    if rt is None:
        return False
    new = copy.deepcopy(obj)
    md = meta(new)
    md["finalizers"] = [f for f in md.get("finalizers") or [] if f != "foregroundDeletion"]
    objects.update(rt, md.get("namespace", ""), md["name"], new, sub=None)
    return True


def _terminate_namespace(objects: Objects, ns_obj: JsonObj) -> bool:
    name = meta(ns_obj)["name"]
    contents = [(k, o) for k, o in objects.store.everything() if meta(o).get("namespace") == name]
    if contents:
        pending = [(k, o) for k, o in contents if not meta(o).get("deletionTimestamp")]
        for key, obj in pending:
            objects.delete_stored(key, obj)
        return bool(pending)
    if not meta(ns_obj).get("finalizers"):
        objects.store.remove(NAMESPACES, ns_obj)
        return True
    return False


async def run(objects: Objects) -> None:
    """The collector's loop; cancelled when the server stops."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(objects.gc_wakeup.wait(), SWEEP_INTERVAL)
        objects.gc_wakeup.clear()
        await asyncio.sleep(DEBOUNCE)
        for _ in range(MAX_ROUNDS):
            try:
                if not sweep(objects):
                    break
            except Exception:
                logger.exception("garbage collection sweep failed")
                break
