"""The native memory model: regions with stable addresses and the region table."""

from __future__ import annotations

import ctypes

import pytest

from pybpf.errors import ProgramFault
from pybpf.runtime.memory import (
    GUARD_SIZE,
    MAX_CALL_FRAMES,
    STACK_FRAME_SIZE,
    Memory,
    access_fault,
)


def test_allocate_gives_native_zeroed_bytes_at_a_stable_address() -> None:
    memory = Memory()
    region = memory.allocate(16, "buf")
    assert region.start == ctypes.addressof(region.buffer)
    assert region.read() == bytes(16)
    # The address is real: ctypes sees what the region wrote.
    region.write(3, b"\x2a")
    assert ctypes.c_ubyte.from_address(region.start + 3).value == 42


def test_allocate_from_copies_data() -> None:
    memory = Memory()
    data = bytearray(b"abc")
    region = memory.allocate_from(bytes(data), "copy")
    data[0] = 0
    assert memory.read(region.start, 3) == b"abc"


def test_wrap_shares_the_callers_buffer() -> None:
    memory = Memory()
    data = bytearray(b"hello")
    region = memory.wrap(data, "shared")
    memory.write(region.start, b"J")
    assert data == bytearray(b"Jello")


@pytest.mark.parametrize(
    ("offset", "size", "found"),
    [(0, 1, True), (15, 1, True), (0, 16, True), (15, 2, False), (16, 1, False), (-1, 1, False)],
)
def test_find_needs_the_whole_access_inside_one_region(offset: int, size: int, found: bool) -> None:
    memory = Memory()
    region = memory.allocate(16, "buf")
    assert (memory.find(region.start + offset, size) is region) is found


def test_find_bisects_among_many_regions() -> None:
    memory = Memory()
    regions = [memory.allocate(8 * (i + 1), f"r{i}") for i in range(50)]
    for region in regions:
        assert memory.find(region.start, region.size) is region
        assert memory.find(region.end - 1) is region
    assert len(memory) == 50
    assert [r.start for r in memory] == sorted(r.start for r in regions)


def test_remove_takes_a_region_out_of_the_table() -> None:
    memory = Memory()
    region = memory.allocate(8, "gone")
    memory.remove(region)
    assert memory.find(region.start) is None
    with pytest.raises(KeyError):
        memory.remove(region)


def test_overlapping_regions_are_refused() -> None:
    memory = Memory()
    region = memory.allocate(8, "a")
    with pytest.raises(ValueError):
        memory.add(region)


def test_nearest_names_the_closest_region() -> None:
    memory = Memory()
    region = memory.allocate(8, "near")
    assert memory.nearest(region.end + 3) is region
    assert Memory().nearest(1234) is None


def test_host_write_to_read_only_region_faults() -> None:
    memory = Memory()
    region = memory.allocate(4, "ro", writable=False)
    assert memory.read(region.start, 4) == bytes(4)
    with pytest.raises(ProgramFault) as info:
        memory.write(region.start, b"x")
    assert info.value.region == "ro"
    assert info.value.address == region.start


def test_out_of_bounds_fault_names_nearest_region() -> None:
    memory = Memory()
    region = memory.allocate(4, "pkt")
    fault = access_fault(memory, region.end, 2, write=False, pc=7)
    assert (fault.pc, fault.address, fault.size, fault.region) == (7, region.end, 2, "pkt")


def test_stack_frames_are_separated_by_unmapped_guard_gaps() -> None:
    memory = Memory()
    stack = memory.allocate_stack()
    assert len(stack.frames) == MAX_CALL_FRAMES
    for lower, upper in zip(stack.frames, stack.frames[1:], strict=False):
        assert lower.region.size == STACK_FRAME_SIZE
        assert upper.region.start - lower.region.end == GUARD_SIZE
        assert memory.find(lower.region.end) is None  # the gap is not mapped
    first = stack.frames[0]
    assert first.top == first.region.end
    assert memory.find(first.region.start - 1) is None


def test_stack_views_alias_the_frame_and_clear_zeroes_them() -> None:
    memory = Memory()
    stack = memory.allocate_stack(frames=2)
    frame = stack.frames[1]
    frame.q[63] = 0x1122334455667788
    assert memory.read(frame.top - 8, 8) == (0x1122334455667788).to_bytes(8, "little")
    stack.clear()
    assert frame.region.read() == bytes(STACK_FRAME_SIZE)
    stack.release()
    assert len(memory) == 0
