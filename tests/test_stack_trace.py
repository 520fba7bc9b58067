"""BPF_MAP_TYPE_STACK_TRACE and bpf_get_stackid, with the kernel's ids and rules.

The stack id is `jhash2(return addresses) & (n_buckets - 1)`: checked
against the kernel by hashing the stacks a kernel program stored and
comparing with the ids it returned. In pybpf the stack is the current
task's (`CurrentTask.kernel_stack`), given by the test.
"""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import StackTraceMap
from pybpf.runtime.maps.stack_trace import (
    BPF_F_FAST_STACK_CMP,
    BPF_F_REUSE_STACKID,
    jhash2,
)
from pybpf.runtime.memory import Memory
from pybpf.runtime.task import CurrentTask
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

OBJ = Path(__file__).parent / "corpus" / "stackid_rawtp.o"
STACK = tuple(0xFFFFFFFF81000000 + 0x1234 * i for i in range(1, 21))  # 20 frames
kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason())


def _stack_id(ips: tuple[int, ...], buckets: int) -> int:
    words = struct.unpack(f"<{2 * len(ips)}I", struct.pack(f"<{len(ips)}Q", *ips))
    return jhash2(words) & (buckets - 1)


def _map(max_entries: int = 4, value_size: int = 8 * 4) -> StackTraceMap:
    spec = MapSpec("stacks", MapType.STACK_TRACE, 4, value_size, max_entries)
    return StackTraceMap(spec, Memory())


@pytest.mark.parametrize(
    ("key_size", "value_size", "max_entries"),
    [(8, 32, 4), (4, 12, 4), (4, 4, 4), (4, 8 * 128, 4), (4, 32, 0)],
)
def test_bad_attributes_are_refused(key_size: int, value_size: int, max_entries: int) -> None:
    spec = MapSpec("s", MapType.STACK_TRACE, key_size, value_size, max_entries)
    with pytest.raises(pybpf.MapError) as info:
        StackTraceMap(spec, Memory())
    assert info.value.errno == errno.EINVAL


def test_same_stack_same_id_other_stack_eexist_unless_reuse() -> None:
    stacks = _map(max_entries=1)  # one bucket: every stack collides
    first = stacks.stackid(STACK, 0)
    assert first == 0
    assert stacks.stackid(STACK, 0) == 0  # the same stack finds its bucket
    other = STACK[::-1]
    assert stacks.stackid(other, 0) == -errno.EEXIST
    assert stacks.lookup(b"\0\0\0\0")[:8] == STACK[0].to_bytes(8, "little")
    assert stacks.stackid(other, BPF_F_REUSE_STACKID) == 0
    assert stacks.lookup(b"\0\0\0\0")[:8] == other[0].to_bytes(8, "little")
    # the fast compare trusts a matching hash alone
    assert stacks.stackid(other, BPF_F_FAST_STACK_CMP) == 0


def test_skip_truncation_and_errors() -> None:
    stacks = _map(max_entries=1000, value_size=8 * 4)
    assert stacks.n_buckets == 1024
    sid = stacks.stackid(STACK, 3)  # skip 3 frames, keep the next 4 (the value's depth)
    assert sid == _stack_id(STACK[3:7], 1024)
    stored = stacks.lookup(sid.to_bytes(4, "little"))
    assert struct.unpack("<4Q", stored) == STACK[3:7]
    assert stacks.stackid(STACK[:2], 2) == -errno.EFAULT  # skipping the whole stack
    assert stacks.stackid(STACK, 1 << 12) == -errno.EINVAL
    assert stacks.stackid((), 0) == -errno.EFAULT


def test_user_space_view() -> None:
    stacks = _map(max_entries=64)
    ids = sorted({stacks.stackid(STACK[i:], 0) for i in range(5)})
    assert [int.from_bytes(k, "little") for k in stacks] == ids
    assert len(stacks) == len(ids)
    short = stacks.stackid((1, 2), 0)
    assert stacks.lookup(short.to_bytes(4, "little")) == struct.pack("<4Q", 1, 2, 0, 0)
    with pytest.raises(pybpf.MapError) as info:
        stacks.update(b"\0\0\0\0", bytes(32))
    assert info.value.errno == errno.EINVAL
    stacks.delete(short.to_bytes(4, "little"))
    assert stacks.lookup(short.to_bytes(4, "little")) is None
    with pytest.raises(pybpf.MapError) as info:
        stacks.delete(short.to_bytes(4, "little"))
    assert info.value.errno == errno.ENOENT
    with pytest.raises(pybpf.MapError) as info:
        stacks.delete((64).to_bytes(4, "little"))
    assert info.value.errno == errno.E2BIG


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_program_gets_the_ids_of_the_current_stack(engine: str) -> None:
    with pybpf.load(OBJ, engine=engine) as obj:
        obj.context.current_task = CurrentTask(pid=7, tgid=7, kernel_stack=STACK)
        assert obj.programs["stackids"].test_run(args=[0, 0]).retval == 0
        ids = list(obj.bss.ids)
        assert ids[0] == _stack_id(STACK[:16], 1024)
        assert ids[1] == _stack_id(STACK[1:17], 1024)
        assert ids[2] == ids[0]  # fast compare: the same hash, the same bucket
        assert ids[3] == _stack_id(STACK[2:18], 1024)
        assert ids[4] == -errno.EINVAL
        stacks = obj.maps["stacks"]
        assert struct.unpack("<16Q", stacks[ids[0].to_bytes(4, "little")]) == STACK[:16]


# --- the kernel's ids ----------------------------------------------------------------


@kernel
def test_kernel_ids_are_jhash2_of_the_stored_stack() -> None:
    with KernelObject(OBJ) as k:
        k.test_run("stackids", b"", ctx_in=bytes(16), repeat=0, data_out_size=0, ctx_out_size=0)
        ids = struct.unpack("<5q", k.map(".bss").lookup(b"\0\0\0\0"))
        assert ids[4] == -errno.EINVAL
        assert ids[2] >= 0
        stored = dict(k.map("stacks").items())
        assert stored, "the kernel stored no stack"
        checked = 0
        for key, value in stored.items():
            ips = tuple(ip for ip in struct.unpack("<16Q", value) if ip)
            assert _stack_id(ips, 1024) == int.from_bytes(key, "little")
            checked += 1
        assert {i for i in ids[:4] if i >= 0} <= {int.from_bytes(k, "little") for k in stored}
        assert checked >= 2
