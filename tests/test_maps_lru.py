"""LRU and per-CPU LRU hash maps: hash errno, eviction of the least recently used key."""

from __future__ import annotations

import errno
import struct

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapError, create_map
from pybpf.runtime.memory import Memory


def key(index: int) -> bytes:
    return struct.pack("<I", index)


def new_lru(max_entries: int = 4, memory: Memory | None = None, **kwargs):
    spec = MapSpec("conns", MapType.LRU_HASH, 4, 8, max_entries, **kwargs)
    return create_map(spec, memory if memory is not None else Memory())


UPDATE_CASES = [
    (False, BPF_ANY, 0),
    (True, BPF_ANY, 0),
    (False, BPF_NOEXIST, 0),
    (True, BPF_NOEXIST, errno.EEXIST),
    (False, BPF_EXIST, errno.ENOENT),
    (True, BPF_EXIST, 0),
    (True, BPF_F_LOCK, errno.EINVAL),
    (False, 3, errno.EINVAL),
]


@pytest.mark.parametrize(("present", "flags", "expected"), UPDATE_CASES)
def test_update_flags_and_errno(present, flags, expected):
    lru = new_lru()
    if present:
        lru[key(7)] = b"old-old!"
    before = dict(lru)
    if expected:
        with pytest.raises(MapError) as caught:
            lru.update(key(7), b"new-new!", flags)
        assert (caught.value.errno, caught.value.op) == (expected, "update")
        assert dict(lru) == before
    else:
        lru.update(key(7), b"new-new!", flags)
        assert lru[key(7)] == b"new-new!"


def test_delete_missing_is_enoent_and_no_prealloc_is_refused():
    lru = new_lru()
    with pytest.raises(MapError) as caught:
        lru.delete(key(1))
    assert caught.value.errno == errno.ENOENT
    with pytest.raises(MapError) as caught:
        new_lru(flags=1)  # BPF_F_NO_PREALLOC: the kernel says ENOTSUPP (524)
    assert caught.value.errno == 524
    new_lru(flags=2)  # BPF_F_NO_COMMON_LRU is accepted


def test_full_map_evicts_least_recently_used_and_keeps_touched_keys():
    lru = new_lru(max_entries=8)
    for i in range(8):
        lru[key(i)] = bytes([i]) * 8
    touched = [1, 4, 6]
    for i in touched:
        assert lru.address_of(key(i)) is not None  # a program's lookup is a use
    for i in range(100, 105):
        lru[key(i)] = bytes(8)  # five new keys evict the five untouched ones
    assert len(lru) == 8
    survivors = {struct.unpack("<I", k)[0] for k in lru}
    assert survivors == set(touched) | set(range(100, 105))
    assert lru[key(4)] == bytes([4]) * 8


def test_eviction_order_is_exact_lru():
    lru = new_lru(max_entries=3)
    for i in range(3):
        lru[key(i)] = bytes(8)
    lru.address_of(key(0))  # order, most recent first: 0, 2, 1
    lru[key(2)] = b"updated!"  # an update is a use too: 2, 0, 1
    lru[key(3)] = bytes(8)  # evicts 1
    assert sorted(lru) == [key(0), key(2), key(3)]
    lru[key(4)] = bytes(8)  # evicts 0
    assert sorted(lru) == [key(2), key(3), key(4)]


def test_api_lookup_does_not_count_as_use():
    # Like Linux since 5.3 (htab_lru_map_lookup_elem_sys): syscall lookups
    # leave the eviction order alone.
    lru = new_lru(max_entries=2)
    lru[key(0)] = bytes(8)
    lru[key(1)] = bytes(8)
    assert lru.lookup(key(0)) == bytes(8)
    lru[key(2)] = bytes(8)
    assert sorted(lru) == [key(1), key(2)]


def test_deleted_slots_are_reused_before_evicting():
    lru = new_lru(max_entries=3)
    for i in range(3):
        lru[key(i)] = bytes(8)
    del lru[key(1)]
    lru[key(9)] = bytes(8)
    assert sorted(lru) == [key(0), key(2), key(9)]
    assert lru.get_next_key(None) is not None
    order = list(lru)
    assert lru.get_next_key(order[-1]) is None and len(order) == 3


def test_values_are_regions_and_stay_put():
    memory = Memory()
    lru = new_lru(memory=memory)
    lru[key(5)] = b"AAAAAAAA"
    address = lru.address_of(key(5))
    assert memory.find(address, 8) is lru.value_region
    memory.write(address, b"BBBBBBBB")
    assert lru[key(5)] == b"BBBBBBBB"
    lru[key(5)] = b"CCCCCCCC"
    assert lru.address_of(key(5)) == address


def test_many_evictions_keep_the_map_consistent():
    lru = new_lru(max_entries=16)
    for i in range(1000):
        lru[key(i)] = struct.pack("<Q", i)
        if i % 3 == 0:
            lru.address_of(key(i // 2))
    assert len(lru) == 16 == len(list(lru))
    assert key(999) in lru
    for k in list(lru):
        assert lru[k] == struct.pack("<Q", struct.unpack("<I", k)[0])


def test_percpu_lru():
    spec = MapSpec("pc", MapType.LRU_PERCPU_HASH, 4, 4, 2)
    lru = create_map(spec, Memory(), ncpus=3)
    lru[key(1)] = [b"aaaa", b"bbbb", b"cccc"]
    assert lru[key(1)] == [b"aaaa", b"bbbb", b"cccc"]
    lru[key(2)] = b"dddd"
    cpu2 = lru.address_of(key(1), cpu=2)  # a program's lookup on CPU 2 is a use
    assert lru.memory.read(cpu2, 4) == b"cccc"
    lru[key(3)] = b"eeee"  # evicts key 2
    assert sorted(lru) == [key(1), key(3)]
    with pytest.raises(MapError) as caught:
        lru.update(key(4), [b"xxxx"])
    assert caught.value.errno == errno.EINVAL
