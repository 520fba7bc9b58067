"""Hash and per-CPU hash maps: Linux semantics, iteration, one memory, threads, a dict model."""

from __future__ import annotations

import errno
import struct
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapError, create_map
from pybpf.runtime.memory import Memory


def key(index: int) -> bytes:
    return struct.pack("<I", index)


def new_hash(max_entries: int = 4, value_size: int = 8, memory: Memory | None = None):
    spec = MapSpec("flows", MapType.HASH, 4, value_size, max_entries)
    return create_map(spec, memory if memory is not None else Memory())


UPDATE_CASES = [
    # (key present before?, flags, expected errno or 0), as kernel/bpf/hashtab.c
    (False, BPF_ANY, 0),
    (True, BPF_ANY, 0),
    (False, BPF_NOEXIST, 0),
    (True, BPF_NOEXIST, errno.EEXIST),
    (False, BPF_EXIST, errno.ENOENT),
    (True, BPF_EXIST, 0),
    (True, BPF_F_LOCK, errno.EINVAL),
    (False, 3, errno.EINVAL),
    (True, 16, errno.EINVAL),
]


@pytest.mark.parametrize(("present", "flags", "expected"), UPDATE_CASES)
def test_update_flags_and_errno(present, flags, expected):
    hmap = new_hash()
    if present:
        hmap[key(7)] = b"old-old!"
    before = dict(hmap)
    if expected:
        with pytest.raises(MapError) as caught:
            hmap.update(key(7), b"new-new!", flags)
        assert (caught.value.errno, caught.value.op) == (expected, "update")
        assert dict(hmap) == before
    else:
        hmap.update(key(7), b"new-new!", flags)
        assert hmap[key(7)] == b"new-new!"
        assert len(hmap) == 1


def test_full_map_is_e2big_but_existing_keys_update():
    hmap = new_hash(max_entries=3)
    for i in range(3):
        hmap[key(i)] = bytes([i]) * 8
    with pytest.raises(MapError) as caught:
        hmap[key(3)] = b"x" * 8
    assert caught.value.errno == errno.E2BIG
    hmap[key(1)] = b"replaced"
    assert hmap[key(1)] == b"replaced" and len(hmap) == 3
    del hmap[key(0)]
    hmap[key(3)] = b"fits-now"
    assert sorted(hmap) == [key(1), key(2), key(3)]


def test_missing_keys():
    hmap = new_hash()
    assert hmap.lookup(key(1)) is None
    with pytest.raises(KeyError):
        hmap[key(1)]
    with pytest.raises(MapError) as caught:
        hmap.delete(key(1))
    assert caught.value.errno == errno.ENOENT
    with pytest.raises(KeyError):
        del hmap[key(1)]
    assert hmap.get_next_key(None) is None


def test_wrong_sizes_are_einval_and_change_nothing():
    hmap = new_hash()
    hmap[key(1)] = b"12345678"
    for bad_key, bad_value in [(b"abc", b"12345678"), (key(2), b"1234567"), (key(2), b"")]:
        with pytest.raises(MapError) as caught:
            hmap.update(bad_key, bad_value)
        assert caught.value.errno == errno.EINVAL
    assert dict(hmap) == {key(1): b"12345678"}


def test_iteration_is_stable_and_visits_every_key_once():
    hmap = new_hash(max_entries=64)
    for i in range(50):
        hmap[key(i * 7919)] = bytes(8)
    first = list(hmap)
    assert first == list(hmap)
    assert sorted(first) == sorted(key(i * 7919) for i in range(50))
    # A missing key restarts at the first key, as in Linux.
    assert hmap.get_next_key(key(123456789)) == first[0]
    assert hmap.get_next_key(first[-1]) is None


def test_deleting_the_current_key_restarts_iteration():
    hmap = new_hash(max_entries=16)
    for i in range(10):
        hmap[key(i)] = bytes(8)
    order = list(hmap)
    current = order[4]
    del hmap[current]
    assert hmap.get_next_key(current) == order[0]
    # The common "delete everything while walking" loop terminates and empties it.
    walked = hmap.get_next_key(None)
    while walked is not None:
        following = hmap.get_next_key(walked)
        hmap.delete(walked)
        walked = following
    assert len(hmap) == 0 and list(hmap) == []


def test_values_are_regions_shared_with_the_api():
    memory = Memory()
    hmap = new_hash(memory=memory)
    hmap[key(5)] = b"AAAAAAAA"
    address = hmap.address_of(key(5))
    assert memory.find(address, 8) is hmap.value_region
    memory.write(address, b"BBBBBBBB")
    assert hmap[key(5)] == b"BBBBBBBB"
    # In-place update: the value keeps its address.
    hmap[key(5)] = b"CCCCCCCC"
    assert hmap.address_of(key(5)) == address
    assert memory.read(address, 8) == b"CCCCCCCC"
    assert hmap.address_of(key(6)) is None


def test_threads_lose_no_updates():
    hmap = new_hash(max_entries=512)
    workers = 8

    def work(worker: int) -> None:
        for i in range(60):
            hmap[key(worker * 1000 + i)] = struct.pack("<Q", worker)
            hmap[key(999_999)] = struct.pack("<Q", worker)  # a key every thread races on
        for i in range(0, 60, 2):
            del hmap[key(worker * 1000 + i)]

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {
        key(w * 1000 + i): struct.pack("<Q", w) for w in range(workers) for i in range(1, 60, 2)
    }
    contents = dict(hmap)
    shared = contents.pop(key(999_999))
    assert struct.unpack("<Q", shared)[0] in range(workers)
    assert contents == expected
    assert len(hmap) == len(expected) + 1


def test_percpu_hash():
    pmap = create_map(MapSpec("ph", MapType.PERCPU_HASH, 4, 4, 2), Memory(), ncpus=2)
    pmap[key(1)] = [b"aaaa", b"bbbb"]
    pmap[key(2)] = b"cccc"
    assert pmap[key(1)] == [b"aaaa", b"bbbb"]
    assert pmap[key(2)] == [b"cccc", b"cccc"]
    with pytest.raises(MapError) as caught:
        pmap[key(3)] = b"dddd"
    assert caught.value.errno == errno.E2BIG
    assert pmap.address_of(key(1), cpu=1) - pmap.address_of(key(1), cpu=0) == 8


FLAGS = st.sampled_from([BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK, 3])


class HashAgainstDict(RuleBasedStateMachine):
    """The native hash map behaves like a dict with Linux's flag rules."""

    MAX = 4

    def __init__(self) -> None:
        super().__init__()
        self.hmap = new_hash(max_entries=self.MAX, value_size=2)
        self.model: dict[bytes, bytes] = {}

    @rule(k=st.integers(0, 7), v=st.binary(min_size=2, max_size=2), flags=FLAGS)
    def update(self, k, v, flags):
        if flags & BPF_F_LOCK or flags > BPF_EXIST:
            expected = errno.EINVAL
        elif key(k) in self.model:
            expected = errno.EEXIST if flags == BPF_NOEXIST else 0
        elif flags == BPF_EXIST:
            expected = errno.ENOENT
        else:
            expected = errno.E2BIG if len(self.model) == self.MAX else 0
        try:
            self.hmap.update(key(k), v, flags)
            got = 0
        except MapError as error:
            got = error.errno
        assert got == expected
        if not expected:
            self.model[key(k)] = v

    @rule(k=st.integers(0, 7))
    def delete(self, k):
        try:
            self.hmap.delete(key(k))
            got = 0
        except MapError as error:
            got = error.errno
        assert got == (0 if key(k) in self.model else errno.ENOENT)
        self.model.pop(key(k), None)

    @rule(k=st.integers(0, 7))
    def lookup(self, k):
        assert self.hmap.lookup(key(k)) == self.model.get(key(k))

    @invariant()
    def same_contents(self):
        keys = list(self.hmap)
        assert len(keys) == len(set(keys)) == len(self.hmap)
        assert {k: self.hmap[k] for k in keys} == self.model


HashAgainstDict.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_hash_against_dict = HashAgainstDict.TestCase


def test_lookups_without_the_lock_never_miss_a_key_beside_churning_writers():
    """Lookups take no lock (a seqlock read, as the kernel's RCU lookups); writers
    inserting and deleting other keys, which moves elements between chains through the
    free list, must never make a lookup of a key that stays in the map miss it or see
    another key's value."""
    hmap = new_hash(max_entries=256, value_size=8)
    stable = list(range(64))
    for k in stable:
        hmap[key(k)] = struct.pack("<Q", k * 3)
    stop = threading.Event()
    errors: list[str] = []

    def churn(base: int) -> None:
        n = 0
        while not stop.is_set():
            k = key(base + n % 96)
            hmap[k] = struct.pack("<Q", n)
            del hmap[k]
            n += 1

    def read() -> None:
        rounds = 0
        while not stop.is_set() and rounds < 4000:
            for k in stable:
                value = hmap.lookup(key(k))
                if value != struct.pack("<Q", k * 3):
                    errors.append(f"key {k}: {value!r}")
            rounds += 1

    writers = [threading.Thread(target=churn, args=(1000 * (w + 1),)) for w in range(2)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=30)
    stop.set()
    for thread in writers:
        thread.join(timeout=30)
    assert not errors, errors[:5]
    assert len(hmap) == len(stable)
