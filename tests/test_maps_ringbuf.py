"""Ring buffer: the kernel's shared-memory layout, reservation rules, libbpf-style consumer, helpers."""

from __future__ import annotations

import errno
import struct
import threading

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.errors import ProgramFault
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperEnv
from pybpf.runtime.linux_helpers import ringbuf as helpers
from pybpf.runtime.maps import MapError, create_map
from pybpf.runtime.maps.ringbuf import (
    BPF_RB_AVAIL_DATA,
    BPF_RB_CONS_POS,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
    ENOTSUPP,
    PAGE_SIZE,
    Record,
    RingBufMap,
)
from pybpf.runtime.memory import Memory


def ringbuf(memory: Memory, size: int = PAGE_SIZE) -> RingBufMap:
    return create_map(MapSpec("events", MapType.RINGBUF, 0, 0, size), memory)


@pytest.fixture
def memory() -> Memory:
    return Memory()


@pytest.fixture
def rb(memory: Memory) -> RingBufMap:
    return ringbuf(memory)


def header_at(rb: RingBufMap, position: int) -> tuple[int, int]:
    return struct.unpack("<II", rb.read(position, 8))


@pytest.mark.parametrize(
    ("key", "value", "size", "flags"),
    [
        (0, 0, 3 * PAGE_SIZE, 0),  # not a power of two
        (0, 0, 2048, 0),  # not a multiple of the page size
        (0, 0, 0, 0),
        (4, 0, PAGE_SIZE, 0),
        (0, 8, PAGE_SIZE, 0),
        (0, 0, PAGE_SIZE, 1),  # BPF_F_NO_PREALLOC is not a ringbuf flag
    ],
)
def test_create_refuses_what_the_kernel_refuses(memory, key, value, size, flags):
    with pytest.raises(MapError) as info:
        create_map(MapSpec("bad", MapType.RINGBUF, key, value, size, flags), memory)
    assert info.value.errno == errno.EINVAL


def test_record_header_positions_and_alignment(rb, memory):
    sample = rb.reserve(10)
    assert sample == rb.value_region.start + 8
    length, pg_off = header_at(rb, 0)
    assert length == 10 | BPF_RINGBUF_BUSY_BIT
    # Pages from the ring's start: header page, consumer, producer, then data.
    assert pg_off == 3
    assert (sample - 8 - pg_off * PAGE_SIZE) == rb.address
    assert rb.producer_pos == 24  # round_up(10 + 8, 8)
    assert rb.records() == []  # busy: not visible yet
    memory.write(sample, b"0123456789")
    rb.submit(sample)
    assert header_at(rb, 0) == (10, 3)
    rb.output(b"abc")
    assert header_at(rb, 24) == (3, 3)
    assert rb.producer_pos == 24 + 16
    assert rb.records() == [Record(b"0123456789", False), Record(b"abc", False)]
    assert rb.consumer_pos == 0


def test_query_values(rb):
    rb.output(b"x" * 20)
    assert rb.query(BPF_RB_AVAIL_DATA) == 32
    assert rb.query(BPF_RB_RING_SIZE) == PAGE_SIZE
    assert rb.query(BPF_RB_CONS_POS) == 0
    assert rb.query(BPF_RB_PROD_POS) == 32
    assert rb.query(99) == 0
    assert rb.consume(lambda data: None) == 1
    assert rb.query(BPF_RB_CONS_POS) == 32
    assert rb.query(BPF_RB_AVAIL_DATA) == 0


def test_reserve_fails_when_it_would_pass_the_consumer(rb):
    assert rb.reserve(PAGE_SIZE) is None  # larger than the ring
    assert rb.reserve(PAGE_SIZE - 8 - 7) is None  # 4096 bytes with the header: > mask
    sample = rb.reserve(PAGE_SIZE - 16)  # 4088 bytes: the most the kernel hands out
    assert sample is not None
    assert rb.reserve(1) is None
    rb.submit(sample)
    assert rb.reserve(1) is None  # still unconsumed
    with pytest.raises(MapError) as info:
        rb.output(b"x")
    assert info.value.errno == errno.EAGAIN
    assert rb.consume(lambda data: None) == 1
    assert rb.reserve(1) is not None


def test_flags_are_checked(rb):
    assert rb.reserve(8, flags=1) is None
    with pytest.raises(MapError) as info:
        rb.output(b"x", flags=4)
    assert info.value.errno == errno.EINVAL
    assert rb.producer_pos == 0


def test_discard_sets_the_bit_and_the_consumer_skips_it(rb):
    first = rb.reserve(4)
    rb.discard(first)
    rb.output(b"kept")
    length, _ = header_at(rb, 0)
    assert length == 4 | BPF_RINGBUF_DISCARD_BIT
    assert rb.records() == [Record(b"\0" * 4, True), Record(b"kept", False)]
    seen = []
    assert rb.consume(seen.append) == 1
    assert seen == [b"kept"]
    assert rb.consumer_pos == rb.producer_pos == 32


def test_records_do_not_consume_and_consumer_stops_at_busy(rb):
    busy = rb.reserve(8)
    rb.output(b"later")
    assert rb.consume(lambda data: None) == 0
    assert rb.consumer_pos == 0
    rb.submit(busy)
    assert len(rb.records()) == 2
    assert len(rb.records()) == 2
    assert rb.consumer_pos == 0
    seen = []
    assert rb.consume(seen.append) == 2
    assert seen == [b"\0" * 8, b"later"]
    assert rb.records() == []


def test_consume_stops_on_negative_callback_and_limit(rb):
    for i in range(3):
        rb.output(bytes([i]))
    assert rb.consume(lambda data: -7) == -7
    assert rb.consumer_pos == 16  # the failing record counts as consumed
    assert rb.consume(lambda data: None, limit=1) == 1
    assert rb.consume(lambda data: None) == 1


def test_wrap_around_is_identical_to_a_double_mapping(rb, memory):
    rb.output(b"\xaa" * 4000)  # positions 0..4008
    assert rb.consume(lambda data: None) == 1
    payload = bytes(range(200))
    sample = rb.reserve(len(payload))
    assert sample == rb.value_region.start + 4008 + 8
    memory.write(sample, payload)  # runs into the overflow tail: one writable region
    rb.submit(sample)
    double = rb.data() * 2  # what the kernel's twice-mapped pages show
    offset = 4008 + 8
    assert double[offset : offset + 200] == payload
    assert rb.data()[: 200 - (PAGE_SIZE - offset)] == payload[PAGE_SIZE - offset :]
    assert header_at(rb, 4008) == (200, 3 + 4008 // PAGE_SIZE)
    assert rb.records() == [Record(payload, False)]
    assert rb.consume(lambda data: None) == 1
    rb.output(b"after")  # the next record lands after the wrapped one
    assert rb.records() == [Record(b"after", False)]
    assert rb.producer_pos == 4008 + 208 + 16


def test_output_wraps_too(rb):
    rb.output(b"\x01" * 4072)
    rb.consume(lambda data: None)
    rb.output(b"wrapped-output-bytes")
    assert rb.records() == [Record(b"wrapped-output-bytes", False)]
    assert rb.data()[:12] == b"wrapped-output-bytes"[8:]


def test_wakeups_follow_the_kernel(rb):
    rb.output(b"a")  # consumer waits at this record: wake up
    assert rb.wakeups == 1
    rb.output(b"b")  # consumer has not caught up with this one
    assert rb.wakeups == 1
    rb.output(b"c", flags=BPF_RB_FORCE_WAKEUP)
    assert rb.wakeups == 2
    rb.consume(lambda data: None)
    rb.output(b"d", flags=BPF_RB_NO_WAKEUP)
    assert rb.wakeups == 2


def test_poll(rb):
    assert rb.poll(lambda data: None, timeout_ms=5) == 0
    rb.output(b"x")
    assert rb.poll(lambda data: None, timeout_ms=5) == 1


def test_map_operations_are_not_supported(rb):
    for call in (
        lambda: rb.lookup(b""),
        lambda: rb.update(b"", b""),
        lambda: rb.delete(b""),
        lambda: rb.get_next_key(),
    ):
        with pytest.raises(MapError) as info:
            call()
        assert info.value.errno == ENOTSUPP
    assert len(rb) == 0 and list(rb) == []


def test_concurrent_producers_lose_nothing(memory):
    rb = ringbuf(memory, 8 * PAGE_SIZE)
    per_thread = 300

    def produce(tag: int) -> None:
        for i in range(per_thread):
            rb.output(struct.pack("<II", tag, i))

    threads = [threading.Thread(target=produce, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = []
    assert rb.consume(seen.append) == 4 * per_thread
    assert sorted(seen) == sorted(
        struct.pack("<II", t, i) for t in range(4) for i in range(per_thread)
    )


# -- helpers ----------------------------------------------------------------------


@pytest.fixture
def env(memory, rb):
    context = ExecutionContext(memory, ncpus=2)
    context.add_map(rb)
    return HelperEnv(memory, runtime=context)


def test_helpers_reserve_submit_discard_query(env, rb, memory):
    sample = helpers.ringbuf_reserve(env, rb.address, 6, 0, 0, 0)
    memory.write(sample, b"helper")
    assert helpers.ringbuf_submit(env, sample, 0, 0, 0, 0) == 0
    other = helpers.ringbuf_reserve(env, rb.address, 2, 0, 0, 0)
    assert helpers.ringbuf_discard(env, other, 0, 0, 0, 0) == 0
    assert helpers.ringbuf_reserve(env, rb.address, 2, 1, 0, 0) == 0
    buffer = memory.allocate_from(b"out!", "stack-like")
    assert helpers.ringbuf_output(env, rb.address, buffer.start, 4, 0, 0) == 0
    assert helpers.ringbuf_output(env, rb.address, buffer.start, 4, 8, 0) == -errno.EINVAL
    assert rb.records() == [Record(b"helper", False), Record(b"\0\0", True), Record(b"out!", False)]
    assert helpers.ringbuf_query(env, rb.address, BPF_RB_PROD_POS, 0, 0, 0) == 16 + 16 + 16


def test_helpers_fault_on_bad_pointers(env, rb, memory):
    buffer = memory.allocate(4, "small")
    with pytest.raises(ProgramFault, match="bpf_ringbuf_output"):
        helpers.ringbuf_output(env, rb.address, buffer.start, 64, 0, 0)
    with pytest.raises(ProgramFault, match="bpf_ringbuf_submit"):
        helpers.ringbuf_submit(env, buffer.start + 8, 0, 0, 0, 0)
    sample = helpers.ringbuf_reserve(env, rb.address, 8, 0, 0, 0)
    helpers.ringbuf_submit(env, sample, 0, 0, 0, 0)
    with pytest.raises(ProgramFault, match="not reserved"):
        helpers.ringbuf_discard(env, sample, 0, 0, 0, 0)
    with pytest.raises(ProgramFault, match="bpf_ringbuf_query"):
        helpers.ringbuf_query(env, buffer.start, 0, 0, 0, 0)


# -- against the kernel -------------------------------------------------------------


def test_layout_matches_the_kernel_byte_for_byte():
    """examples/xdp_events.o in the kernel and in pybpf: same positions, same data pages.

    Enough packets go through, with consumption in between, for records to
    wrap around the 4096-byte ring; the kernel's ring is read through mmap
    as a libbpf consumer reads it.
    """
    import mmap
    from pathlib import Path

    from pybpf.testing import packets as P
    from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel bpf()")
    try:
        from pybpf import load
    except ImportError as missing:
        pytest.skip(f"pybpf.load is not there yet: {missing}")
    path = Path(__file__).resolve().parents[1] / "examples" / "xdp_events.o"
    frames = list(P.sample_packets().values())
    with KernelObject(path) as kernel, load(path) as obj:
        ring = obj.maps["events"]
        theirs = kernel.map("events")
        for round_ in range(40):
            for frame in frames:
                kernel.test_run("xdp_events", frame, cpu=0)
                obj.programs["xdp_events"].test_run(data=frame)
            if round_ % 3 == 2:
                got = theirs.consume()
                assert [bytes(d) for d in got] == _consume_all(ring)
        consumer = mmap.mmap(theirs.fd, PAGE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        rest = mmap.mmap(
            theirs.fd, PAGE_SIZE + 2 * ring.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE_SIZE
        )
        try:
            cons, prod = struct.unpack_from("<Q", consumer)[0], struct.unpack_from("<Q", rest)[0]
            assert prod > ring.size  # wrapped at least once
            assert (ring.consumer_pos, ring.producer_pos) == (cons, prod)
            data = rest[PAGE_SIZE : PAGE_SIZE + ring.size]
            assert ring.data() == data
            assert rest[PAGE_SIZE + ring.size :] == data  # the second mapping
        finally:
            consumer.close()
            rest.close()


def _consume_all(ring: RingBufMap) -> list[bytes]:
    seen: list[bytes] = []
    ring.consume(seen.append)
    return seen
