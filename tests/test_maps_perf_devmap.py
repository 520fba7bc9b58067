"""perf_event_array with its reader and helper; devmap, devmap_hash, cpumap, xskmap and bpf_redirect_map."""

from __future__ import annotations

import errno
import struct

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.errors import ProgramFault
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperEnv
from pybpf.runtime.linux_helpers import perf, redirect
from pybpf.runtime.maps import BPF_EXIST, BPF_NOEXIST, MapError, create_map
from pybpf.runtime.maps.perf_event_array import BPF_F_CURRENT_CPU
from pybpf.runtime.memory import Memory


def key(index: int) -> bytes:
    return struct.pack("<I", index)


@pytest.fixture
def context() -> ExecutionContext:
    return ExecutionContext(Memory(), ncpus=2)


@pytest.fixture
def events(context):
    array = create_map(
        MapSpec("events", MapType.PERF_EVENT_ARRAY, 4, 4, 0), context.memory, ncpus=2
    )
    context.add_map(array)
    return array


def env_on(context: ExecutionContext, cpu: int) -> HelperEnv:
    return HelperEnv(context.memory, runtime=context, cpu=cpu)


def test_max_entries_zero_means_every_cpu(events):
    assert events.spec.max_entries == 2


def test_perf_event_output_reaches_the_reader(events, context):
    reader = events.open_reader()
    data = context.memory.allocate_from(b"sample", "buffer")
    env = env_on(context, 1)
    assert perf.perf_event_output(env, 0, events.address, BPF_F_CURRENT_CPU, data.start, 6) == 0
    assert perf.perf_event_output(env, 0, events.address, 1, data.start, 3) == 0
    # perf pads raw samples so that the u32 size and the data fill 8-byte words.
    assert reader.read() == [(1, b"sample" + bytes(6)), (1, b"sam\0")]
    assert reader.read() == []
    assert reader.lost == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (2, -errno.E2BIG),
        (0, -errno.EOPNOTSUPP),  # CPU 0's event, running on CPU 1
        (1 << 60, -errno.EINVAL),
    ],
)
def test_perf_event_output_errors(events, context, flags, expected):
    events.open_reader()
    data = context.memory.allocate_from(b"x", "buffer")
    assert (
        perf.perf_event_output(env_on(context, 1), 0, events.address, flags, data.start, 1)
        == expected
    )


def test_perf_event_output_without_reader_is_enoent(events, context):
    data = context.memory.allocate_from(b"x", "buffer")
    env = env_on(context, 0)
    assert (
        perf.perf_event_output(env, 0, events.address, BPF_F_CURRENT_CPU, data.start, 1)
        == -errno.ENOENT
    )
    reader = events.open_reader(cpus=[1])
    assert (
        perf.perf_event_output(env, 0, events.address, BPF_F_CURRENT_CPU, data.start, 1)
        == -errno.ENOENT
    )
    reader.close()
    assert events.lookup(key(1)) is None


def test_full_buffer_counts_lost_samples(events, context):
    reader = events.open_reader(capacity=64)
    data = context.memory.allocate(20, "buffer")
    env = env_on(context, 0)
    results = [
        perf.perf_event_output(env, 0, events.address, BPF_F_CURRENT_CPU, data.start, 20)
        for _ in range(3)
    ]
    assert results == [0, 0, 0]  # the kernel reports success and counts the loss
    assert len(reader.read()) == 2
    assert reader.lost == 1


def test_perf_helper_faults_on_bad_pointer(events, context):
    events.open_reader()
    with pytest.raises(ProgramFault, match="bpf_perf_event_output"):
        perf.perf_event_output(env_on(context, 0), 0, events.address, BPF_F_CURRENT_CPU, 8, 4)
    with pytest.raises(ProgramFault, match="bpf_perf_event_output"):
        perf.perf_event_output(env_on(context, 0), 0, 1234, BPF_F_CURRENT_CPU, 8, 4)


def test_perf_event_array_only_stores_readers(events):
    with pytest.raises(MapError) as info:
        events.update(key(0), key(3))
    assert info.value.errno == errno.EINVAL


# -- redirect maps ------------------------------------------------------------------


def redirect_map(context, kind, value_size=4, entries=4):
    map_ = create_map(
        MapSpec(kind.name.lower(), kind, 4, value_size, entries), context.memory, ncpus=2
    )
    context.add_map(map_)
    return map_


@pytest.mark.parametrize(
    ("kind", "value_size"),
    [(MapType.DEVMAP, 12), (MapType.CPUMAP, 2), (MapType.XSKMAP, 8), (MapType.DEVMAP_HASH, 16)],
)
def test_value_sizes(context, kind, value_size):
    with pytest.raises(MapError) as info:
        redirect_map(context, kind, value_size)
    assert info.value.errno == errno.EINVAL


def test_devmap_rules(context):
    devmap = redirect_map(context, MapType.DEVMAP, 8)
    devmap.update(key(1), struct.pack("<II", 7, 0))
    assert devmap.redirect_target(1) == 7
    assert devmap.redirect_target(0) is None
    for index, flags, expected in (
        (4, 0, errno.E2BIG),
        (0, BPF_NOEXIST, errno.EEXIST),
        (0, 4, errno.EINVAL),
    ):
        with pytest.raises(MapError) as info:
            devmap.update(key(index), struct.pack("<II", 3, 0), flags)
        assert info.value.errno == expected
    devmap.update(key(1), struct.pack("<II", 0, 0))  # ifindex 0 empties the slot
    assert devmap.redirect_target(1) is None
    with pytest.raises(MapError) as info:
        devmap.update(key(1), struct.pack("<II", 0, 5))
    assert info.value.errno == errno.EINVAL
    devmap.delete(key(2))  # deleting an empty slot is fine in an array devmap
    with pytest.raises(MapError) as info:
        devmap.delete(key(9))
    assert info.value.errno == errno.EINVAL


def test_devmap_hash_and_cpumap_and_xskmap(context):
    hashed = redirect_map(context, MapType.DEVMAP_HASH)
    hashed.update(key(1000), 3)
    assert hashed.redirect_target(1000) == 3
    with pytest.raises(MapError) as info:
        hashed.delete(key(5))
    assert info.value.errno == errno.ENOENT
    cpus = redirect_map(context, MapType.CPUMAP)
    cpus.update(key(1), 192)
    assert cpus.redirect_target(1) == 1
    for index, qsize, expected in ((3, 10, errno.ENODEV), (0, 20000, errno.EOVERFLOW)):
        with pytest.raises(MapError) as info:
            cpus.update(key(index), qsize)
        assert info.value.errno == expected
    xsk = redirect_map(context, MapType.XSKMAP)
    with pytest.raises(MapError) as info:
        xsk.update(key(0), 5, BPF_EXIST)
    assert info.value.errno == errno.ENOENT
    xsk.update(key(0), 5, BPF_NOEXIST)
    assert xsk.redirect_target(0) == 5
    assert list(xsk) == [key(0)]


def test_redirect_map_helper(context):
    devmap = redirect_map(context, MapType.DEVMAP)
    devmap.update(key(2), 9)
    env = env_on(context, 0)
    assert redirect.redirect_map(env, devmap.address, 2, 0, 0, 0) == redirect.XDP_REDIRECT
    record = env.data["redirect"]
    assert (record.map_name, record.key, record.target) == ("devmap", 2, 9)
    env = env_on(context, 0)
    assert redirect.redirect_map(env, devmap.address, 1, 2, 0, 0) == 2  # fallback XDP_PASS
    assert redirect.redirect_map(env, devmap.address, 1, 0, 0, 0) == 0
    assert "redirect" not in env.data
    assert redirect.redirect_map(env, devmap.address, 2, 1 << 5, 0, 0) == redirect.XDP_ABORTED
    assert redirect.redirect_map(env, devmap.address, 1, redirect.BPF_F_BROADCAST, 0, 0) == 4
    cpus = redirect_map(context, MapType.CPUMAP)
    # Broadcast is a device-map flag only.
    assert redirect.redirect_map(env, cpus.address, 0, redirect.BPF_F_BROADCAST, 0, 0) == 0
    with pytest.raises(ProgramFault, match="bpf_redirect_map"):
        redirect.redirect_map(env, 1234, 0, 0, 0, 0)
