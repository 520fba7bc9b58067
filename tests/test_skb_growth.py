"""Packets that grow past the test run's buffer move to a bigger one, as the kernel's skb does.

`tests/corpus/tc_grow.o` grows the frame with skb_change_head, skb_change_tail
or bpf_skb_adjust_room by an amount set in `.rodata`: within the headroom
(64 bytes) and tailroom, beyond them (the kernel reallocates the head or
tail and succeeds), and past BPF_SKB_MAX_LEN (16064 bytes: -EINVAL). Each
case is compared with the kernel in both engines where bpf() works, and
with the expected bytes everywhere.
"""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

OBJ = Path(__file__).parent / "corpus" / "tc_grow.o"
FRAME = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00\x45" + bytes(range(1, 60))
MAX = 16064
EINVAL = (-errno.EINVAL) & 0xFFFFFFFF
HEAD, TAIL, ROOM = 0, 1, 2

CASES = [
    (HEAD, 8, len(FRAME) + 8),
    (HEAD, 100, len(FRAME) + 100),  # past the 64-byte headroom
    (HEAD, 4096, len(FRAME) + 4096),
    (HEAD, MAX - len(FRAME), MAX),
    (HEAD, MAX - len(FRAME) + 1, None),
    (TAIL, 4000, 4000),  # past the page's tailroom
    (TAIL, MAX, MAX),
    (TAIL, MAX + 1, None),
    (ROOM, 100, len(FRAME) + 100),
    (ROOM, 4000, len(FRAME) + 4000),
]


def _ours(engine: str, op: int, amount: int) -> tuple[int, bytes]:
    with pybpf.load(OBJ, engine=engine) as obj:
        obj.rodata.op = op
        obj.rodata.amount = amount
        run = obj.programs["grow"].test_run(data=FRAME)
        return run.retval, run.data_out


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
@pytest.mark.parametrize(("op", "amount", "length"), CASES)
def test_growth_follows_the_kernel(engine: str, op: int, amount: int, length: int | None) -> None:
    retval, data_out = _ours(engine, op, amount)
    if length is None:
        assert (retval, data_out) == (EINVAL, FRAME)
        return
    assert retval == 0
    assert len(data_out) == length
    if op == HEAD:
        assert data_out == bytes(amount) + FRAME
    elif op == TAIL:
        assert data_out == FRAME + bytes(amount - len(FRAME))


@pytest.mark.skipif(not kernel_available(), reason=unavailable_reason())
@pytest.mark.parametrize(("op", "amount", "length"), CASES)
def test_growth_equals_the_kernel(op: int, amount: int, length: int | None) -> None:
    values = {"op": struct.pack("<I", op), "amount": struct.pack("<I", amount)}
    with KernelObject(OBJ, globals=values) as k:
        want = k.test_run("grow", FRAME, data_out_size=MAX + 64)
    for engine in ("interpreter", "jit"):
        assert _ours(engine, op, amount) == (want.retval, want.data_out)
