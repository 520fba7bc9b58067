"""Maps in shared memory: position-independent regions another mapping or process runs on."""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import MapError, attach_map, create_map, shared
from pybpf.runtime.maps.shared import MapMemory
from pybpf.runtime.memory import Memory

SHAREABLE = [
    MapSpec("a", MapType.ARRAY, 4, 8, 16),
    MapSpec("pa", MapType.PERCPU_ARRAY, 4, 8, 16),
    MapSpec("h", MapType.HASH, 4, 8, 16),
    MapSpec("ph", MapType.PERCPU_HASH, 4, 8, 16),
    MapSpec("lru", MapType.LRU_HASH, 4, 8, 16),
    MapSpec("plru", MapType.LRU_PERCPU_HASH, 4, 8, 16),
    MapSpec("lpm", MapType.LPM_TRIE, 8, 8, 16, flags=1),
]


def key(i: int) -> bytes:
    return struct.pack("<I", i)


def lpm_key(i: int) -> bytes:
    return struct.pack("<I", 32) + struct.pack(">I", 0x0A000000 + i)


def key_for(spec: MapSpec, i: int) -> bytes:
    return lpm_key(i) if spec.type == MapType.LPM_TRIE else key(i)


def value(i: int) -> bytes:
    return struct.pack("<Q", 1000 + i)


def second_mapping(map_):
    """The same region mapped again in this process (another address), as a new map."""
    return attach_map(os.dup(map_.shared.fd), Memory(), map_.name)


def test_the_header_holds_offsets_not_addresses():
    for spec in [*SHAREABLE, MapSpec("q", MapType.QUEUE, 0, 8, 8)]:
        m = create_map(spec, Memory(), ncpus=2)
        header = m.header
        for field in ("values", "elems", "buckets"):
            assert getattr(header, field) < m.shared.size, (spec.name, field)
        assert m.address == m.shared.address


@pytest.mark.parametrize("spec", SHAREABLE, ids=lambda s: s.name)
def test_a_second_mapping_sees_and_changes_the_same_entries(spec):
    first = create_map(spec, Memory(), ncpus=2)
    for i in range(5):
        first.update(key_for(spec, i), value(i))
    second = second_mapping(first)
    assert second.address != first.address
    assert type(second) is type(first)
    want = [value(3)] * 2 if first.percpu else value(3)
    assert second.lookup(key_for(spec, 3)) == want
    second.update(key_for(spec, 9), value(9))
    if spec.type != MapType.ARRAY and spec.type != MapType.PERCPU_ARRAY:
        second.delete(key_for(spec, 0))
        assert first.lookup(key_for(spec, 0)) is None
    got = first.lookup(key_for(spec, 9))
    assert got == ([value(9)] * 2 if first.percpu else value(9))
    assert sorted(first) == sorted(second)


def test_queue_bloom_and_ringbuf_work_through_a_second_mapping():
    queue = create_map(MapSpec("q", MapType.QUEUE, 0, 8, 4), Memory())
    queue.push(value(1))
    other = second_mapping(queue)
    other.push(value(2))
    assert queue.pop() == value(1)
    assert other.pop() == value(2)

    bloom = create_map(MapSpec("b", MapType.BLOOM_FILTER, 0, 4, 64), Memory())
    bloom.push(key(7))
    assert second_mapping(bloom).peek(key(7)) is not None

    ring = create_map(MapSpec("r", MapType.RINGBUF, 0, 0, 4096), Memory())
    ring.output(b"hello")
    consumer = second_mapping(ring)
    seen: list[bytes] = []
    assert consumer.consume(seen.append) == 1
    assert seen == [b"hello"]
    assert ring.consumer_pos == consumer.consumer_pos == ring.producer_pos


def test_families_holding_python_state_refuse_to_attach():
    prog_array = create_map(MapSpec("p", MapType.PROG_ARRAY, 4, 4, 4), Memory())
    with pytest.raises(MapError) as caught:
        second_mapping(prog_array)
    assert caught.value.errno == errno.EINVAL
    assert "cannot be shared" in str(caught.value)


def test_a_read_only_mapping_refuses_every_write_and_changes_nothing():
    m = create_map(MapSpec("h", MapType.HASH, 4, 8, 4), Memory())
    m.update(key(1), value(1))
    before = ctypes.string_at(m.shared.address, m.shared.size)
    reader = attach_map(os.dup(m.shared.fd), Memory(), "h", writable=False)
    assert reader.lookup(key(1)) == value(1)
    assert list(reader) == [key(1)]
    for write in (
        lambda: reader.update(key(2), value(2)),
        lambda: reader.update(key(1), value(5)),
        lambda: reader.delete(key(1)),
    ):
        with pytest.raises(MapError) as caught:
            write()
        assert caught.value.errno == errno.EPERM
    assert ctypes.string_at(m.shared.address, m.shared.size) == before
    queue = create_map(MapSpec("q", MapType.QUEUE, 0, 8, 4), Memory())
    with pytest.raises(MapError) as caught:
        attach_map(os.dup(queue.shared.fd), Memory(), "q", writable=False)
    assert caught.value.errno == errno.EPERM


def test_a_descriptor_that_is_not_a_map_region_is_refused():
    read, write = os.pipe()
    os.close(write)
    with pytest.raises(OSError) as caught:
        MapMemory.attach(read)
    assert "not a map region" in str(caught.value)


CHILD = textwrap.dedent(
    """
    import struct, sys
    from pybpf.runtime.maps import attach_map
    from pybpf.runtime.memory import Memory
    fd, first, count = (int(x) for x in sys.argv[1:4])
    m = attach_map(fd, Memory(), "shared")
    for i in range(first, first + count):
        m.update(struct.pack("<I", i), struct.pack("<Q", i * 3))
    # Read back what the parent wrote before starting us.
    print(struct.unpack("<Q", m.lookup(struct.pack("<I", 100000)))[0])
    """
)


def test_processes_insert_into_one_hash_map_at_once_and_lose_nothing():
    """Four processes insert distinct keys into one map at the same time: the
    map's spinlock, in the shared region, keeps every insert."""
    m = create_map(MapSpec("shared", MapType.HASH, 4, 8, 4096), Memory())
    m.update(key(100000), struct.pack("<Q", 77))
    per_child = 500
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(m.shared.fd), str(n * per_child), str(per_child)],
            pass_fds=[m.shared.fd],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        assert out.strip() == "77"
    assert len(m) == 4 * per_child + 1
    for i in range(4 * per_child):
        assert m.lookup(key(i)) == struct.pack("<Q", i * 3)


_RUN_DEMO = """
import json, pathlib
import pybpf
from pybpf.runtime.native import compile_stats
with pybpf.load("examples/xdp_counter.o") as obj:
    run = obj.programs["xdp_count"].test_run(data=pathlib.Path(
        "examples/packets/udp_dns.bin").read_bytes())
    addresses = {name: obj.maps[name].address for name in obj.maps}
stats = compile_stats()
jit = [name for name in stats.compiled + stats.loaded if name.startswith("pybpf-jit-")]
print(json.dumps({"retval": run.retval, "addresses": addresses, "jit": jit,
                  "loaded": [name for name in stats.loaded if name.startswith("pybpf-jit-")]}))
"""


def _demo_in_child(cache_dir) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYBPF_CACHE_DIR=str(cache_dir), PYBPF_JIT_TIERED="0")
    done = subprocess.run(
        [sys.executable, "-c", _RUN_DEMO],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_a_second_process_maps_the_same_maps_at_the_same_addresses_and_reuses_the_jit(tmp_path):
    # The per-user address hints make a program's map pointers, and so its JIT cache key,
    # the same in the next process: its object comes from the disk cache.
    first = _demo_in_child(tmp_path)
    second = _demo_in_child(tmp_path)
    assert first["retval"] == second["retval"] == 1  # XDP_DROP
    assert first["addresses"] == second["addresses"]
    assert first["loaded"] == [] and second["loaded"] == first["jit"]
    assert (tmp_path / "map-address-base").exists()


def test_without_a_cache_directory_regions_are_mapped_anywhere(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    first = _demo_in_child(blocker / "cache")
    assert first["retval"] == 1 and first["loaded"] == []


def test_a_freed_regions_address_is_given_to_the_next_region_of_its_size():
    # A daemon loading and closing objects in cycles must get the same map addresses
    # each cycle (and so reuse its JIT code) rather than new ones every time.
    first = MapMemory.create(3 * 4096, "reuse-a")
    address = first.address
    span = shared._hinted.get(address)
    if span is None:
        pytest.skip("no address hints here (no cache directory)")
    other = MapMemory.create(64 * 1024 * 1024, "reuse-big")  # another size: not affected
    del first
    gc.collect()
    freed = set(shared._free_hints.get(span, ()))
    assert address in freed
    second = MapMemory.create(3 * 4096, "reuse-b")
    try:
        assert second.address in freed  # a range given back, not a new one
        assert other.address not in freed
    finally:
        del second, other
        gc.collect()
