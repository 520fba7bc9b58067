"""Queue, stack and bloom filter maps: push/pop/peek, flags and errno as in Linux."""

from __future__ import annotations

import errno
import struct

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapError, create_map
from pybpf.runtime.memory import Memory

EOPNOTSUPP = errno.EOPNOTSUPP


def value(n: int) -> bytes:
    return struct.pack("<I", n)


def new_keyless(kind: int, max_entries: int = 3, **kwargs):
    return create_map(MapSpec("m", kind, 0, 4, max_entries, **kwargs), Memory())


def raises(errno_: int, call, *args):
    with pytest.raises(MapError) as caught:
        call(*args)
    assert caught.value.errno == errno_


def test_queue_is_fifo_and_exist_overwrites_oldest():
    queue = new_keyless(MapType.QUEUE)
    raises(errno.ENOENT, queue.pop)
    raises(errno.ENOENT, queue.peek)
    for n in range(3):
        queue.push(value(n))
    raises(errno.E2BIG, queue.push, value(9))
    queue.push(value(3), BPF_EXIST)  # drops 0
    assert len(queue) == 3 and queue.peek() == value(1)
    assert [queue.pop() for _ in range(3)] == [value(1), value(2), value(3)]
    raises(errno.ENOENT, queue.pop)
    for n in range(10):  # wrap around the ring many times
        queue.push(value(n), BPF_EXIST)
    assert [queue.pop() for _ in range(3)] == [value(7), value(8), value(9)]


def test_stack_is_lifo_and_exist_overwrites_oldest():
    stack = new_keyless(MapType.STACK)
    raises(errno.ENOENT, stack.pop)
    for n in range(3):
        stack.push(value(n))
    raises(errno.E2BIG, stack.push, value(9))
    stack.push(value(3), BPF_EXIST)  # drops the oldest, 0, as the kernel does
    assert stack.peek() == value(3)
    assert [stack.pop() for _ in range(3)] == [value(3), value(2), value(1)]
    raises(errno.ENOENT, stack.peek)


@pytest.mark.parametrize("kind", [MapType.QUEUE, MapType.STACK])
def test_queue_stack_flags_and_key_operations(kind):
    m = new_keyless(kind)
    for flags in (BPF_NOEXIST, BPF_NOEXIST | BPF_EXIST, 4, 8):
        raises(errno.EINVAL, m.push, value(1), flags)
    raises(errno.EINVAL, m.push, b"abc")  # wrong value size
    assert len(m) == 0
    m.update(b"", value(5))  # the syscall's update is a push
    assert m.lookup(b"") == value(5)  # and its lookup a peek
    raises(errno.EINVAL, m.delete, b"")
    raises(errno.EINVAL, m.get_next_key, None)
    assert m.native.lookup and m.native.push and m.native.pop and m.native.peek
    assert m.address_of(b"") is None  # a program's lookup gives NULL


@pytest.mark.parametrize("kind", [MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER])
def test_keyless_create_errors(kind):
    for key_size, value_size, entries, flags in [
        (4, 4, 3, 0),
        (0, 0, 3, 0),
        (0, 4, 0, 0),
        (0, 4, 3, 1),
    ]:
        with pytest.raises(MapError) as caught:
            create_map(MapSpec("m", kind, key_size, value_size, entries, flags=flags), Memory())
        assert (caught.value.errno, caught.value.op) == (errno.EINVAL, "create")


def test_other_families_have_no_push_pop_peek():
    array = create_map(MapSpec("a", MapType.ARRAY, 4, 4, 2), Memory())
    raises(errno.EINVAL, array.push, value(1))
    raises(errno.EINVAL, array.pop)
    raises(errno.EINVAL, array.peek)
    assert array.native.push == 0


def test_bloom_filter_has_no_false_negatives():
    bloom = new_keyless(MapType.BLOOM_FILTER, max_entries=200)
    assert bloom.hashes == 5 and bloom.bits == 2048
    for n in range(200):
        bloom.push(value(n * 7919))
    assert all(bloom.contains(value(n * 7919)) for n in range(200))
    assert bloom.peek(value(7919)) == value(7919)
    false_positives = sum(value(n) in bloom for n in range(10**6, 10**6 + 2000))
    assert false_positives < 200  # ~2% expected for 5 hashes at this size
    raises(errno.ENOENT, new_keyless(MapType.BLOOM_FILTER).peek, value(1))


def test_bloom_filter_flags_and_unsupported_operations():
    bloom = new_keyless(MapType.BLOOM_FILTER, map_extra=3)
    assert bloom.hashes == 3
    for flags in (BPF_NOEXIST, BPF_EXIST, 4):
        raises(errno.EINVAL, bloom.push, value(1), flags)
    bloom.update(b"", value(1), BPF_ANY)  # the syscall's update is a push
    assert value(1) in bloom
    raises(EOPNOTSUPP, bloom.pop)
    raises(EOPNOTSUPP, bloom.delete, b"")
    raises(EOPNOTSUPP, bloom.get_next_key, None)
    raises(errno.EINVAL, bloom.lookup, b"")
    assert list(bloom) == []
    with pytest.raises(MapError) as caught:
        new_keyless(MapType.BLOOM_FILTER, map_extra=0x10)
    assert caught.value.errno == errno.EINVAL
