"""Random ids cannot be predicted from earlier ones (an invocation id is also an awakeable capability).

A Mersenne Twister (Python's `random`) is fully determined by 624 of its outputs; 300 ULID-style
ids reveal 600 of them. The predictor below reconstructs outputs of the generator from earlier
ones; it is first shown to work on ids built from `random.Random`, then shown to fail on ours.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from restate_server.ids import DeploymentId, InvocationId

IDS = 300
_MASK = 0xFFFFFFFF


def _undo_right(y: int, shift: int) -> int:
    x = y
    for _ in range(32 // shift + 1):
        x = y ^ (x >> shift)
    return x


def _undo_left(y: int, shift: int, mask: int) -> int:
    x = y
    for _ in range(32 // shift + 1):
        x = y ^ ((x << shift) & mask)
    return x & _MASK


def _untemper(y: int) -> int:
    y = _undo_right(y, 18)
    y = _undo_left(y, 15, 0xEFC60000)
    y = _undo_left(y, 7, 0x9D2C5680)
    return _undo_right(y, 11)


def _temper(y: int) -> int:
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    return y ^ (y >> 18)


def _correct_predictions(uuids: list[bytes]) -> int:
    """How many ids' first random word the Twister recurrence predicts from earlier ids.

    Each id's 80 random bits are three Twister outputs: two whole words and 16 bits of a third,
    so outputs 3k and 3k+1 of the stream are known. Output n is state n-227 mixed with states
    n-624 and n-623; for n = 3k all three are known words.
    """
    state: dict[int, int] = {}
    for k, uuid in enumerate(uuids):
        tail = uuid[6:]
        state[3 * k] = _untemper(int.from_bytes(tail[0:4], "little"))
        state[3 * k + 1] = _untemper(int.from_bytes(tail[4:8], "little"))
    hits = 0
    for k in range(208, len(uuids)):
        n = 3 * k
        y = (state[n - 624] & 0x80000000) | (state[n - 623] & 0x7FFFFFFF)
        predicted = state[n - 227] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        hits += _temper(predicted) == int.from_bytes(uuids[k][6:10], "little")
    return hits


def test_the_predictor_recovers_ids_made_with_the_random_module() -> None:
    rng = random.Random(2024)
    uuids = [bytes(6) + rng.randbytes(10) for _ in range(IDS)]
    assert _correct_predictions(uuids) == IDS - 208  # every prediction right: the check has teeth


def test_invocation_ids_cannot_be_predicted_from_earlier_ones() -> None:
    uuids = [InvocationId.generate(0).uuid for _ in range(IDS)]
    assert _correct_predictions(uuids) == 0


def _boom(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("ids must not come from the random module")


@pytest.mark.parametrize(
    "make",
    [
        lambda: InvocationId.for_call("Greeter").to_bytes(),
        lambda: InvocationId.for_call("Counter", "k").to_bytes(),
        lambda: DeploymentId.generate().to_bytes(),
    ],
    ids=["unkeyed-call", "keyed-call", "deployment"],
)
def test_random_ids_do_not_come_from_the_random_module(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[], bytes]
) -> None:
    for name in ("random", "getrandbits", "randbytes", "randrange", "randint", "seed"):
        monkeypatch.setattr(random.Random, name, _boom)
    made = {make() for _ in range(IDS)}
    assert len(made) == IDS


def test_seeding_the_random_module_does_not_repeat_ids() -> None:
    random.seed(7)
    first = [InvocationId.for_call("Greeter") for _ in range(IDS)]
    random.seed(7)
    second = [InvocationId.for_call("Greeter") for _ in range(IDS)]
    assert len({*first, *second}) == 2 * IDS
