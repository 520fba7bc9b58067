"""prog_array and maps of maps: fd-array rules, tail-call targets, inner map pointers."""

from __future__ import annotations

import ctypes
import errno
import struct

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.maps import BPF_EXIST, BPF_NOEXIST, MapError, create_map
from pybpf.runtime.maps.map_in_map import BPF_F_INNER_MAP
from pybpf.runtime.memory import Memory


def key(index: int) -> bytes:
    return struct.pack("<I", index)


@pytest.fixture
def context() -> ExecutionContext:
    return ExecutionContext(Memory(), ncpus=2)


class FakeProgram:
    def __init__(self, context: ExecutionContext, name: str):
        self.name = name
        self.id = context.add_program(self)


@pytest.fixture
def progs(context):
    array = create_map(MapSpec("jmp", MapType.PROG_ARRAY, 4, 4, 4), context.memory)
    array.context = context
    return array


def test_prog_array_stores_program_ids(progs, context):
    first, second = FakeProgram(context, "a"), FakeProgram(context, "b")
    progs[key(0)] = first
    progs[key(2)] = second.id
    assert progs.lookup(key(0)) == key(first.id)
    assert progs.lookup(key(1)) is None
    assert progs.tail_call_target(0) is first
    assert progs.tail_call_target(2) is second
    assert progs.tail_call_target(1) is None
    assert progs.tail_call_target(4) is None
    # The native slot holds the id a JIT's tail call reads.
    slot = progs.address_of(key(2))
    assert ctypes.c_uint32.from_address(slot).value == second.id
    del progs[key(2)]
    assert progs.tail_call_target(2) is None


@pytest.mark.parametrize(
    ("index", "value", "flags", "expected"),
    [
        (4, 1, 0, errno.E2BIG),
        (0, 1, BPF_NOEXIST, errno.EINVAL),  # fd arrays take BPF_ANY only
        (0, 1, BPF_EXIST, errno.EINVAL),
        (0, 99, 0, errno.EBADF),  # no such program
        (0, "nope", 0, errno.EBADF),
    ],
)
def test_prog_array_update_errors(progs, context, index, value, flags, expected):
    FakeProgram(context, "only")
    with pytest.raises(MapError) as info:
        progs.update(key(index), value, flags)
    assert info.value.errno == expected
    assert progs.lookup(key(0)) is None


def test_prog_array_delete_empty_is_enoent(progs):
    with pytest.raises(MapError) as info:
        progs.delete(key(1))
    assert info.value.errno == errno.ENOENT
    # get_next_key walks every index like the kernel's; iteration as a
    # Mapping yields only occupied slots (none here), so items() never fails.
    assert progs.get_next_key(None) == key(0)
    assert progs.get_next_key(key(2)) == key(3)
    assert list(progs) == [] and dict(progs.items()) == {}


def test_prog_array_value_size_must_be_4(context):
    with pytest.raises(MapError) as info:
        create_map(MapSpec("bad", MapType.PROG_ARRAY, 4, 8, 4), context.memory)
    assert info.value.errno == errno.EINVAL


INNER = MapSpec("inner", MapType.ARRAY, 4, 8, 4)


@pytest.fixture
def outer_array(context):
    spec = MapSpec("outer", MapType.ARRAY_OF_MAPS, 4, 4, 3, inner_map=INNER)
    outer = create_map(spec, context.memory)
    outer.context = context
    return outer


def test_array_of_maps_lookup_returns_the_inner_map_pointer(outer_array, context):
    inner = create_map(INNER, context.memory)
    context.add_map(inner)
    outer_array[key(1)] = inner
    assert outer_array.lookup(key(1)) is inner
    assert outer_array.lookup(key(0)) is None
    # What a program's bpf_map_lookup_elem gives: the map pointer, not a slot.
    assert outer_array.native.lookup != outer_array.native.update
    lookup = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
        outer_array.native.lookup
    )
    assert lookup(outer_array.address, key(1), 0) == inner.address
    assert lookup(outer_array.address, key(0), 0) == 0
    assert lookup(outer_array.address, key(7), 0) == 0
    assert context.map_at(outer_array.inner_address(key(1))) is inner
    # Stored by address through the context, too.
    outer_array.update(key(2), inner.address)
    assert outer_array.inner_address(key(2)) == inner.address
    outer_array.delete(key(1))
    assert outer_array.inner_address(key(1)) is None
    with pytest.raises(MapError) as info:
        outer_array.delete(key(1))
    assert info.value.errno == errno.ENOENT


@pytest.mark.parametrize(
    "spec",
    [
        MapSpec("wrong_type", MapType.HASH, 4, 8, 4),
        MapSpec("wrong_value", MapType.ARRAY, 4, 16, 4),
        MapSpec("wrong_entries", MapType.ARRAY, 4, 8, 5),
        MapSpec("wrong_flags", MapType.ARRAY, 4, 8, 4, flags=BPF_F_INNER_MAP),
    ],
)
def test_inner_map_must_match_the_template(outer_array, context, spec):
    with pytest.raises(MapError) as info:
        outer_array[key(0)] = create_map(spec, context.memory)
    assert info.value.errno == errno.EINVAL
    assert outer_array.lookup(key(0)) is None


def test_inner_map_flag_lifts_the_max_entries_check(context):
    template = MapSpec("inner", MapType.ARRAY, 4, 8, 4, flags=BPF_F_INNER_MAP)
    outer = create_map(
        MapSpec("outer", MapType.ARRAY_OF_MAPS, 4, 4, 2, inner_map=template), context.memory
    )
    other = create_map(
        MapSpec("big", MapType.ARRAY, 4, 8, 64, flags=BPF_F_INNER_MAP), context.memory
    )
    outer[key(0)] = other
    assert outer.inner_address(key(0)) == other.address


def test_array_of_maps_update_rules(outer_array, context):
    inner = create_map(INNER, context.memory)
    for index, flags, expected in ((3, 0, errno.E2BIG), (0, BPF_NOEXIST, errno.EINVAL)):
        with pytest.raises(MapError) as info:
            outer_array.update(key(index), inner, flags)
        assert info.value.errno == expected
    with pytest.raises(MapError):
        outer_array[key(0)] = b"\0\0\0\0"


def test_map_of_maps_needs_an_inner_map(context):
    with pytest.raises(MapError) as info:
        create_map(MapSpec("outer", MapType.ARRAY_OF_MAPS, 4, 4, 2), context.memory)
    assert info.value.errno == errno.EINVAL


def test_hash_of_maps(context):
    template = MapSpec("inner", MapType.HASH, 4, 4, 8)
    outer = create_map(
        MapSpec("outer", MapType.HASH_OF_MAPS, 8, 4, 2, inner_map=template), context.memory
    )
    first = create_map(template, context.memory)
    second = create_map(MapSpec("bigger", MapType.HASH, 4, 4, 100), context.memory)
    outer[b"k" * 8] = first
    outer[b"j" * 8] = second  # hash inner maps may differ in max_entries
    assert outer.inner_address(b"k" * 8) == first.address
    assert outer.lookup(b"j" * 8) is second
    assert outer.inner_address(b"x" * 8) is None
    with pytest.raises(MapError) as info:
        outer.update(b"k" * 8, second, BPF_NOEXIST)
    assert info.value.errno == errno.EEXIST
    with pytest.raises(MapError) as info:
        outer.update(b"x" * 8, second, BPF_EXIST)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(MapError) as info:
        outer[b"x" * 8] = first  # full
    assert info.value.errno == errno.E2BIG
    assert sorted(outer) == [b"j" * 8, b"k" * 8]
    del outer[b"k" * 8]
    assert outer.inner_address(b"k" * 8) is None
