"""Array and per-CPU array maps: Linux errno and flag semantics, one memory, native cache."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import subprocess
import sys

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.errors import NotSupportedError
from pybpf.runtime.maps import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_NOEXIST,
    MapError,
    PerCpuArrayMap,
    create_map,
)
from pybpf.runtime.memory import Memory


def key(index: int) -> bytes:
    return struct.pack("<I", index)


@pytest.fixture
def memory() -> Memory:
    return Memory()


@pytest.fixture
def array(memory: Memory):
    return create_map(MapSpec("counts", MapType.ARRAY, 4, 12, 4), memory)


UPDATE_CASES = [
    # (index, flags, expected errno or 0) as kernel/bpf/arraymap.c answers
    (1, BPF_ANY, 0),
    (1, BPF_EXIST, 0),
    (1, BPF_NOEXIST, errno.EEXIST),
    (4, BPF_ANY, errno.E2BIG),
    (4, BPF_NOEXIST, errno.E2BIG),
    (1, BPF_F_LOCK, errno.EINVAL),
    (1, 3, errno.EINVAL),
    (1, 8, errno.EINVAL),
    (9, 8, errno.EINVAL),  # flags are checked before the index
]


@pytest.mark.parametrize(("index", "flags", "expected"), UPDATE_CASES)
def test_update_flags_and_errno(array, index, flags, expected):
    value = b"v" * 12
    if expected:
        with pytest.raises(MapError) as caught:
            array.update(key(index), value, flags)
        assert caught.value.errno == expected
        assert caught.value.op == "update"
        if index < 4:
            assert array.lookup(key(index)) == bytes(12)
    else:
        array.update(key(index), value, flags)
        assert array[key(index)] == value


def test_elements_exist_zeroed_and_cannot_be_deleted(array):
    assert len(array) == 4
    assert array.lookup(key(3)) == bytes(12)
    assert array.lookup(key(4)) is None
    with pytest.raises(MapError) as caught:
        array.delete(key(0))
    assert caught.value.errno == errno.EINVAL


NEXT_KEY_CASES = [(None, 0), (0, 1), (2, 3), (3, None), (4, 0), (0xFFFFFFFF, 0)]


@pytest.mark.parametrize(("current", "expected"), NEXT_KEY_CASES)
def test_get_next_key(array, current, expected):
    given = None if current is None else key(current)
    assert array.get_next_key(given) == (None if expected is None else key(expected))


def test_iteration_visits_every_index(array):
    assert list(array) == [key(i) for i in range(4)]
    array[key(2)] = b"x" * 12
    assert dict(array.items())[key(2)] == b"x" * 12


@pytest.mark.parametrize(
    ("bad_key", "bad_value"), [(b"\0" * 3, b"v" * 12), (key(0), b"v" * 11), (key(0), b"v" * 13)]
)
def test_wrong_sizes_are_einval_and_change_nothing(array, bad_key, bad_value):
    with pytest.raises(MapError) as caught:
        array.update(bad_key, bad_value)
    assert caught.value.errno == errno.EINVAL
    assert all(value == bytes(12) for value in array.values())


@pytest.mark.parametrize(
    "spec",
    [
        MapSpec("k8", MapType.ARRAY, 8, 4, 4),
        MapSpec("v0", MapType.ARRAY, 4, 0, 4),
        MapSpec("e0", MapType.ARRAY, 4, 4, 0),
    ],
)
def test_create_rejects_bad_specs(memory, spec):
    with pytest.raises(MapError) as caught:
        create_map(spec, memory)
    assert (caught.value.errno, caught.value.op) == (errno.EINVAL, "create")


def test_unsupported_family(memory):
    with pytest.raises(NotSupportedError):
        create_map(MapSpec("sm", MapType.SOCKMAP, 4, 4, 16), memory)


def test_values_are_regions_shared_with_the_api(memory, array):
    address = array.address_of(key(2))
    region = memory.find(address, 12)
    assert region is array.value_region
    # Elements are round_up(value_size, 8) apart, as in the kernel.
    assert array.address_of(key(3)) - address == 16
    memory.write(address, b"through-mem!")
    assert array[key(2)] == b"through-mem!"
    array[key(1)] = b"through-api!"
    assert memory.read(array.address_of(key(1)), 12) == b"through-api!"


def test_native_functions_are_callable_by_address(array):
    lookup = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
        array.native.lookup
    )
    assert lookup(array.address, key(1), 0) == array.address_of(key(1))
    assert lookup(array.address, key(4), 0) == 0


def test_percpu_array_lists_and_broadcast(memory):
    percpu = create_map(MapSpec("pc", MapType.PERCPU_ARRAY, 4, 4, 2), memory, ncpus=3)
    assert isinstance(percpu, PerCpuArrayMap)
    assert percpu[key(0)] == [bytes(4)] * 3
    percpu[key(0)] = [b"aaaa", b"bbbb", b"cccc"]
    assert percpu[key(0)] == [b"aaaa", b"bbbb", b"cccc"]
    percpu[key(1)] = b"zzzz"
    assert percpu[key(1)] == [b"zzzz"] * 3
    # Each CPU's value has its own 8-byte slot in the region.
    assert percpu.address_of(key(0), cpu=2) - percpu.address_of(key(0), cpu=0) == 16
    assert ctypes.string_at(percpu.address_of(key(0), cpu=1), 4) == b"bbbb"
    with pytest.raises(MapError) as caught:
        percpu.update(key(0), [b"aaaa"] * 2)
    assert caught.value.errno == errno.EINVAL
    assert percpu[key(0)] == [b"aaaa", b"bbbb", b"cccc"]
    assert percpu.address_of(key(0), cpu=3) is None


def test_percpu_default_ncpus(memory):
    percpu = create_map(MapSpec("pc", MapType.PERCPU_ARRAY, 4, 4, 1), memory)
    assert percpu.ncpus == (os.cpu_count() or 1)


_COMPILE_IN_CHILD = """
import json
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import create_map
from pybpf.runtime.memory import Memory
from pybpf.runtime.native import compile_stats
m = create_map(MapSpec("a", 2, 4, 8, 2), Memory())
m[(1).to_bytes(4, "little")] = b"12345678"
assert m[(1).to_bytes(4, "little")] == b"12345678"
stats = compile_stats()
print(json.dumps({"compiled": stats.compiled, "loaded": stats.loaded}))
"""


def _child_stats(cache_dir: str) -> dict:
    env = dict(os.environ, PYBPF_CACHE_DIR=cache_dir)
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE_IN_CHILD],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_object_cache_skips_compilation_in_a_second_process(tmp_path):
    first = _child_stats(str(tmp_path))
    assert len(first["compiled"]) == 1 and first["loaded"] == []
    assert list(tmp_path.glob("pybpf-array-*.o"))
    second = _child_stats(str(tmp_path))
    assert second["compiled"] == [] and second["loaded"] == first["compiled"]


def test_a_cached_native_module_is_added_without_building_its_ir(tmp_path):
    # pybpf's own modules are keyed by its sources: a cache hit never builds IR.
    counting = _COMPILE_IN_CHILD.replace(
        "m = create_map",
        "from pybpf.runtime.native import compiler\n"
        "built = []\n"
        "original = compiler.NativeModule.ir_text\n"
        "compiler.NativeModule.ir_text = lambda self: built.append(self.name) or original(self)\n"
        "m = create_map",
    ).replace('"loaded": stats.loaded}', '"loaded": stats.loaded, "built": built}')
    env = dict(os.environ, PYBPF_CACHE_DIR=str(tmp_path))
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", counting],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0]["built"] == ["array"] and runs[1]["built"] == []
    assert runs[1]["loaded"] == runs[0]["compiled"]
    assert len(list(tmp_path.glob("pybpf-array-*.o"))) == 1  # stored once, by its sources


def test_unwritable_cache_falls_back_to_compiling(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    stats = _child_stats(str(blocker / "cache"))
    assert len(stats["compiled"]) == 1
