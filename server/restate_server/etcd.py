"""A small typed etcd v3 client over `aetcd`'s gRPC stubs, shared by the etcd log and metadata providers.

`aetcd`'s high-level client connects to one member and hides the responses' revisions; the
providers need both every member (a killed member must not stop the node) and the raw responses
(revisions, `create_revision`, compaction points). So this module opens one gRPC channel over all
endpoints (round-robin, keep-alives that notice a dead member within seconds) and exposes the few
calls the providers use, with etcd's messages as they come. Errors stay gRPC errors;
:func:`is_retryable` says which ones may be retried (and, for writes, may already have been applied).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import grpc
from aetcd import rpc

REQUEST_TIMEOUT = 5.0  # seconds per unary call; etcd itself gives up on a proposal after ~7 s
_CHANNEL_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,  # member down, no leader, "request timed out", "leader changed"
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # "too many requests"
}

# etcd's message types, re-exported so callers need not import aetcd
Compare = rpc.Compare
RequestOp = rpc.RequestOp
RangeRequest = rpc.RangeRequest
PutRequest = rpc.PutRequest
DeleteRangeRequest = rpc.DeleteRangeRequest
TxnResponse = rpc.TxnResponse
RangeResponse = rpc.RangeResponse
KeyValue = rpc.KeyValue
EVENT_PUT = rpc.Event.PUT
EVENT_DELETE = rpc.Event.DELETE


class Compacted(Exception):
    """A watch asked for history that compaction removed; ``revision`` is the oldest still kept."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"etcd history compacted up to revision {revision}")
        self.revision = revision


def is_retryable(error: BaseException) -> bool:
    """True for errors after which the call may be repeated (a write may or may not have happened)."""
    return isinstance(error, grpc.RpcError) and error.code() in _RETRYABLE


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range holding every key that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b"\x00"


def _target(endpoints: Sequence[str]) -> str:
    addresses = []
    for endpoint in endpoints:
        host, _, port = endpoint.removeprefix("http://").rstrip("/").rpartition(":")
        address = str(socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)[0][4][0])
        addresses.append(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    scheme = "ipv6" if any(a.startswith("[") for a in addresses) else "ipv4"
    return f"{scheme}:{','.join(addresses)}"


class EtcdClient:
    """One channel to an etcd cluster; create it inside the event loop that uses it."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = REQUEST_TIMEOUT) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = list(endpoints)
        self._timeout = timeout
        self._channel = rpc.insecure_channel(_target(endpoints), options=_CHANNEL_OPTIONS)
        self._kv = rpc.KVStub(self._channel)
        self._lease = rpc.LeaseStub(self._channel)
        self._watch = rpc.WatchStub(self._channel)
        self._maintenance = rpc.MaintenanceStub(self._channel)

    async def txn(
        self,
        compare: Sequence[Any],
        success: Sequence[Any],
        failure: Sequence[Any] = (),
        *,
        deadline: float | None = None,
    ) -> Any:
        """One Txn; ``deadline`` (seconds) overrides the client's request timeout."""
        request = rpc.TxnRequest(compare=compare, success=success, failure=failure)
        return await self._kv.Txn(request, timeout=deadline or self._timeout)

    async def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        limit: int = 0,
        descend: bool = False,
        keys_only: bool = False,
    ) -> Any:
        return await self._kv.Range(
            range_request(key, range_end, limit=limit, descend=descend, keys_only=keys_only),
            timeout=self._timeout,
        )

    async def compact(self, revision: int) -> None:
        await self._kv.Compact(rpc.CompactionRequest(revision=revision), timeout=self._timeout)

    async def db_size(self) -> int:
        """Bytes of the backend database on the member answering (what the space quota counts)."""
        status = await self._maintenance.Status(rpc.StatusRequest(), timeout=self._timeout)
        return int(status.dbSize)

    async def watch(self, key: bytes, range_end: bytes, start_revision: int) -> AsyncGenerator[Any, None]:
        """Watch responses for ``[key, range_end)`` from ``start_revision`` on, until the stream breaks.

        Raises :class:`Compacted` when the start revision was compacted, and the gRPC error when the
        stream breaks (a member died): the caller resumes from the last revision it saw.
        """
        create = rpc.WatchCreateRequest(key=key, range_end=range_end, start_revision=start_revision)
        requests: asyncio.Queue[Any] = asyncio.Queue()
        requests.put_nowait(rpc.WatchRequest(create_request=create))

        async def outgoing() -> AsyncIterator[Any]:
            while (request := await requests.get()) is not None:
                yield request

        call = self._watch.Watch(outgoing())
        try:
            async for response in call:
                if response.compact_revision:
                    raise Compacted(response.compact_revision)
                if response.canceled:
                    raise RuntimeError(f"etcd cancelled the watch: {response.cancel_reason}")
                yield response
        finally:
            requests.put_nowait(None)
            call.cancel()

    async def lease_grant(self, ttl: int) -> tuple[int, int]:
        """A new lease; returns its id and granted TTL (seconds)."""
        response = await self._lease.LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl), timeout=self._timeout)
        if response.error:
            raise RuntimeError(f"etcd refused a lease: {response.error}")
        return int(response.ID), int(response.TTL)

    async def lease_keepalive(self, lease_id: int) -> int:
        """Refresh a lease once; returns the TTL it got (0: the lease had already expired)."""
        requests = [rpc.LeaseKeepAliveRequest(ID=lease_id)]
        async for response in self._lease.LeaseKeepAlive(iter(requests), timeout=self._timeout):
            return int(response.TTL)
        return 0

    async def lease_revoke(self, lease_id: int) -> None:
        await self._lease.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease_id), timeout=self._timeout)

    async def close(self) -> None:
        await self._channel.close()


def range_request(
    key: bytes, range_end: bytes = b"", *, limit: int = 0, descend: bool = False, keys_only: bool = False
) -> Any:
    request = rpc.RangeRequest(key=key, range_end=range_end, limit=limit, keys_only=keys_only)
    if descend:
        request.sort_order = rpc.RangeRequest.DESCEND
        request.sort_target = rpc.RangeRequest.KEY
    return request


def op_range(key: bytes, range_end: bytes = b"", *, limit: int = 0, descend: bool = False) -> Any:
    return rpc.RequestOp(request_range=range_request(key, range_end, limit=limit, descend=descend))


def op_put(key: bytes, value: bytes, *, lease: int = 0) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))


def op_delete(key: bytes, range_end: bytes = b"") -> Any:
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key, range_end=range_end))


def value_is(key: bytes, value: bytes) -> Any:
    return rpc.Compare(key=key, target=rpc.Compare.VALUE, result=rpc.Compare.EQUAL, value=value)


def created_at(key: bytes, revision: int) -> Any:
    """``create_revision(key) == revision``; 0 means the key does not exist."""
    return rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=revision)


def modified_at(key: bytes, revision: int) -> Any:
    """``mod_revision(key) == revision``; 0 means the key does not exist."""
    return rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=revision)


def version_is(key: bytes, version: int) -> Any:
    """``version(key) == version``: the number of writes since it was created (0: absent)."""
    return rpc.Compare(key=key, target=rpc.Compare.VERSION, result=rpc.Compare.EQUAL, version=version)
