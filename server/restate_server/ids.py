"""Resource ids (``inv_1``, ``dp_1``, ``sub_1``, ``sign_1``/``prom_1``) in upstream's exact encoding.

The real ``restate`` CLI and SDKs parse these strings, and ids of keyed/idempotent/workflow
invocations are derived deterministically (that is what makes dedup work across ingress calls),
so both the text form and the derivations must match upstream bit for bit:

* ``<prefix>_1<payload>``: scheme version ``1``. Integers are base62 with the alphabet
  ``0-9a-zA-Z``, left-padded with ``0`` to a fixed width (11 chars for u64, 22 for u128). The
  value encoded is the integer's *big-endian byte image read as little-endian* (upstream calls
  ``to_be()`` before encoding on little-endian hosts); we reproduce that byte swap.
* Invocation id = partition key (u64) + 128-bit uuid: 24 raw bytes (u64 BE + 16 bytes), 38 chars.
* Partition keys are xxh3-64 (seed 0) over Rust's ``Hash`` encoding: a string hashes as its
  UTF-8 bytes followed by ``0xff``, a u64 as 8 little-endian bytes.
* Awakeable/signal ids are base64url (no padding) of the raw invocation id + u32 BE index.

Random ids come from the OS CSPRNG (``secrets``), never from ``random``: an invocation id is
also the capability to complete its awakeables (``sign_1`` = id + index), so seeing some ids must
not let anyone predict the next ones (a Mersenne Twister is recovered from 624 outputs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Self

import xxhash

__all__ = [
    "UNSCOPED_SERVICE_PARTITION_KEY_FANOUT",
    "AwakeableRef",
    "DeploymentId",
    "IdError",
    "InvocationId",
    "SubscriptionId",
    "awakeable_id",
    "decode_awakeable_id",
    "idempotent_partition_key",
    "parse_awakeable_id",
    "partition_key_for",
    "partition_key_range",
    "partition_of",
    "random_unscoped_partition_key",
    "unscoped_service_partition_key",
]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
_U64_WIDTH = 11  # ceil(64 / 6)
_U128_WIDTH = 22  # ceil(128 / 6)
_U64_MAX = (1 << 64) - 1
_VERSION = "1"
_RESOURCE_TYPES = frozenset({"inv", "dp", "sub", "prom", "sign", "snap", "mut", "vq"})

UNSCOPED_SERVICE_PARTITION_KEY_FANOUT = 512
"""Unkeyed invocations of one service spread over this many partition keys (upstream's constant)."""


class IdError(ValueError):
    """An id string or byte form is malformed; messages match upstream's ``IdDecodeError``."""

    LENGTH: ClassVar[str] = "bad length"
    CODEC: ClassVar[str] = "base62 decode error"
    FORMAT: ClassVar[str] = "bad format"
    VERSION: ClassVar[str] = "unrecognized codec version"
    TYPE_MISMATCH: ClassVar[str] = "id doesn't match the expected type"


# ---------------------------------------------------------------- base62 with upstream's byte swap


def _swap(value: int, size: int) -> int:
    return int.from_bytes(value.to_bytes(size, "big"), "little")


def _b62_encode(value: int, size: int, width: int) -> str:
    n = _swap(value, size)
    out = ["0"] * width
    i = width
    while n:
        n, r = divmod(n, 62)
        i -= 1
        out[i] = _ALPHABET[r]
    return "".join(out)


def _b62_decode(text: str, offset: int, size: int, width: int) -> int:
    chunk = text[offset : offset + width]
    if len(chunk) != width:
        raise IdError(IdError.LENGTH)
    n = 0
    try:
        for c in chunk:
            n = n * 62 + _DIGIT[c]
    except KeyError:
        raise IdError(IdError.CODEC) from None
    if n >> (size * 8):
        raise IdError(IdError.CODEC)
    return _swap(n, size)


def _split_prefix(text: str) -> tuple[str, str]:
    """Return ``(resource_type, payload)`` after checking the ``<type>_1`` envelope."""
    if not text:
        raise IdError(IdError.LENGTH)
    prefix, sep, rest = text.partition("_")
    if not sep:
        raise IdError(IdError.FORMAT)
    if prefix not in _RESOURCE_TYPES:
        raise IdError(f"unrecognized resource type: {prefix}")
    if not rest:
        raise IdError(IdError.LENGTH)
    if rest[0] != _VERSION:
        raise IdError(IdError.VERSION)
    return prefix, rest[1:]


def _expect_type(text: str, resource: str) -> str:
    prefix, payload = _split_prefix(text)
    if prefix != resource:
        raise IdError(IdError.TYPE_MISMATCH)
    return payload


# ---------------------------------------------------------------- partition keys


def _rust_str(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return raw + b"\xff"


def partition_key_for(key: str | bytes) -> int:
    """Partition key (u64) of an object/workflow key or an idempotency key: xxh3 as upstream."""
    return xxhash.xxh3_64_intdigest(_rust_str(key))


def unscoped_service_partition_key(service: str, bucket: int) -> int:
    """Partition key of bucket ``bucket`` (< 512) of an unkeyed service, as upstream."""
    data = _rust_str(service) + _rust_str("unscoped/service") + bucket.to_bytes(8, "little")
    return xxhash.xxh3_64_intdigest(data)


def random_unscoped_partition_key(service: str) -> int:
    """Random partition key for a call to an unkeyed service without idempotency key."""
    return unscoped_service_partition_key(service, secrets.randbelow(UNSCOPED_SERVICE_PARTITION_KEY_FANOUT))


def idempotent_partition_key(service: str, idempotency_key: str, key: str | None = None) -> int:
    """Partition key of an idempotent request: the object key's if keyed, else a service bucket.

    The bucket form matches what the real 1.7 server emitted in our captures (its "controlled
    idempotent sharding"); older servers hashed the idempotency key itself.
    """
    if key is not None:
        return partition_key_for(key)
    bucket = partition_key_for(idempotency_key) % UNSCOPED_SERVICE_PARTITION_KEY_FANOUT
    return unscoped_service_partition_key(service, bucket)


def partition_of(partition_key: int, num_partitions: int) -> int:
    """Partition id owning a key when the u64 space is cut into equal ranges (upstream's plan)."""
    return (partition_key * num_partitions) >> 64


def partition_key_range(partition_id: int, num_partitions: int) -> tuple[int, int]:
    """Inclusive ``(start, end)`` key range of a partition; inverse of ``partition_of``."""
    space = 1 << 64
    start = -((-partition_id * space) // num_partitions)
    end = -((-(partition_id + 1) * space) // num_partitions) - 1
    return start, end


# ---------------------------------------------------------------- invocation ids


def _ulid_bytes() -> bytes:
    """A ULID: 48-bit ms timestamp then 80 random bits (what upstream uses for random uuids)."""
    return (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + secrets.token_bytes(10)


def _sha_uuid(*parts: str | bytes) -> bytes:
    data = b",".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hashlib.sha256(data).digest()[:16]


@dataclass(frozen=True, slots=True, order=True)
class InvocationId:
    """Partition key (u64) plus a 16-byte uuid; ``str()`` is the 38-char ``inv_1...`` form."""

    partition_key: int
    uuid: bytes

    RAW_LEN: ClassVar[int] = 24
    STR_LEN: ClassVar[int] = 38

    def __post_init__(self) -> None:
        if not 0 <= self.partition_key <= _U64_MAX:
            raise IdError("partition key out of u64 range")
        if len(self.uuid) != 16:
            raise IdError(IdError.LENGTH)

    def to_bytes(self) -> bytes:
        """The 24 raw bytes sent as ``StartMessage.id``."""
        return self.partition_key.to_bytes(8, "big") + self.uuid

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Inverse of ``to_bytes``."""
        if len(raw) != cls.RAW_LEN:
            raise IdError(IdError.LENGTH)
        return cls(int.from_bytes(raw[:8], "big"), bytes(raw[8:]))

    def __str__(self) -> str:
        return (
            "inv_1"
            + _b62_encode(self.partition_key, 8, _U64_WIDTH)
            + _b62_encode(int.from_bytes(self.uuid, "big"), 16, _U128_WIDTH)
        )

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``inv_1...``; raises ``IdError`` with upstream's reason on failure."""
        payload = _expect_type(text, "inv")
        pk = _b62_decode(payload, 0, 8, _U64_WIDTH)
        uuid = _b62_decode(payload, _U64_WIDTH, 16, _U128_WIDTH)
        if len(payload) != _U64_WIDTH + _U128_WIDTH:
            raise IdError(IdError.LENGTH)
        return cls(pk, uuid.to_bytes(16, "big"))

    @classmethod
    def generate(cls, partition_key: int) -> Self:
        """A fresh id with a ULID uuid in the given partition key."""
        return cls(partition_key, _ulid_bytes())

    @classmethod
    def deterministic(cls, partition_key: int, *parts: str | bytes) -> Self:
        """Id whose uuid is ``sha256(",".join(parts))[:16]``: stable for the same inputs.

        With upstream's parts this reproduces upstream's ids exactly (see ``for_workflow`` and
        ``for_idempotent_request``); other part lists are ours, merely stable.
        """
        return cls(partition_key, _sha_uuid(*parts))

    @classmethod
    def for_workflow(cls, service: str, key: str, scope: str | None = None) -> Self:
        """The id of a workflow run (``run`` handler) of ``service/key``, as upstream derives it.

        Scoped targets take their partition key from the scope upstream; we use the key's hash.
        """
        tag: tuple[str, ...] = ("wf",) if scope is None else ("wf", scope)
        return cls.deterministic(partition_key_for(key), *tag, service, key)

    @classmethod
    def for_idempotent_request(
        cls,
        service: str,
        handler: str,
        idempotency_key: str,
        key: str | None = None,
        scope: str | None = None,
    ) -> Self:
        """The id of a request carrying an idempotency key, as upstream derives it."""
        parts: list[str] = ["ik"] if scope is None else ["ik", scope]
        parts.append(service)
        if key is not None:
            parts.append(key)
        parts += [handler, idempotency_key]
        return cls.deterministic(idempotent_partition_key(service, idempotency_key, key), *parts)

    @classmethod
    def for_call(cls, service: str, key: str | None = None) -> Self:
        """A random id for a plain call: keyed targets in their key's partition key."""
        pk = partition_key_for(key) if key is not None else random_unscoped_partition_key(service)
        return cls.generate(pk)


# ---------------------------------------------------------------- ULID-backed ids


@dataclass(frozen=True, slots=True, order=True)
class _UlidId:
    """A 128-bit ULID rendered as ``<prefix>_1`` + 22 base62 chars."""

    value: bytes

    PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if len(self.value) != 16:
            raise IdError(IdError.LENGTH)

    @classmethod
    def generate(cls) -> Self:
        """A fresh time-ordered id."""
        return cls(_ulid_bytes())

    def to_bytes(self) -> bytes:
        """16 raw bytes (big-endian u128)."""
        return self.value

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Inverse of ``to_bytes``."""
        return cls(bytes(raw))

    def __str__(self) -> str:
        return f"{self.PREFIX}_1" + _b62_encode(int.from_bytes(self.value, "big"), 16, _U128_WIDTH)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the string form; raises ``IdError`` with upstream's reason on failure."""
        payload = _expect_type(text, cls.PREFIX)
        raw = _b62_decode(payload, 0, 16, _U128_WIDTH)
        if len(payload) != _U128_WIDTH:
            raise IdError(IdError.LENGTH)
        return cls(raw.to_bytes(16, "big"))


class DeploymentId(_UlidId):
    """``dp_1`` + 22 chars (26 in all)."""

    __slots__ = ()
    PREFIX: ClassVar[str] = "dp"


class SubscriptionId(_UlidId):
    """``sub_1`` + 22 chars (27 in all)."""

    __slots__ = ()
    PREFIX: ClassVar[str] = "sub"


# ---------------------------------------------------------------- awakeables / external signals


class AwakeableRef(NamedTuple):
    """A decoded awakeable id: target invocation, index, and whether it was a legacy ``prom_1``.

    For ``sign_1`` ids ``idx`` is a signal index; for legacy ``prom_1`` ids (protocol <= V4)
    it is a journal entry index.
    """

    invocation_id: InvocationId
    idx: int
    legacy: bool


def awakeable_id(invocation_id: bytes | InvocationId, signal_idx: int) -> str:
    """The ``sign_1...`` id the SDK derives for signal ``signal_idx`` of an invocation."""
    raw = invocation_id.to_bytes() if isinstance(invocation_id, InvocationId) else invocation_id
    body = raw + signal_idx.to_bytes(4, "big")
    return "sign_1" + base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def decode_awakeable_id(text: str) -> AwakeableRef:
    """Decode ``sign_1``/``prom_1`` ids (padding optional, as upstream)."""
    prefix, payload = _split_prefix(text)
    if prefix not in ("sign", "prom"):
        raise IdError(IdError.TYPE_MISMATCH)
    stripped = payload.rstrip("=")
    try:
        padded = stripped + "=" * (-len(stripped) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise IdError(IdError.CODEC) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != stripped:
        raise IdError(IdError.CODEC)  # non-canonical trailing bits, rejected upstream too
    if len(raw) != InvocationId.RAW_LEN + 4:
        raise IdError(IdError.LENGTH)
    inv = InvocationId.from_bytes(raw[:24])
    return AwakeableRef(inv, int.from_bytes(raw[24:], "big"), prefix == "prom")


def parse_awakeable_id(text: str) -> tuple[InvocationId, int]:
    """``(invocation id, index)`` of an awakeable id; see ``decode_awakeable_id`` for the legacy flag."""
    ref = decode_awakeable_id(text)
    return ref.invocation_id, ref.idx
