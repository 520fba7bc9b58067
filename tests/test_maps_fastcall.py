"""Native `Map.lookup`/`Map.update` entry points (maps/fastcall.py) against the Python path."""

from __future__ import annotations

import errno
import gc
import os
import random
import struct
import subprocess
import sys
import threading
import tracemalloc

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.errors import MapError
from pybpf.runtime.maps import create_map, fastcall, lpm_key
from pybpf.runtime.maps.base import Map
from pybpf.runtime.maps.hash import HashMap
from pybpf.runtime.memory import Memory

pytestmark = pytest.mark.skipif(not fastcall.FASTCALL_ENABLED, reason="no native entry points")

NCPUS = 3
FAMILIES = {
    "array": (MapType.ARRAY, 4, 12, 8, 0),
    "percpu_array": (MapType.PERCPU_ARRAY, 4, 4, 8, 0),
    "hash": (MapType.HASH, 6, 8, 8, 0),
    "percpu_hash": (MapType.PERCPU_HASH, 4, 12, 8, 0),
    "lru_hash": (MapType.LRU_HASH, 4, 8, 4, 0),
    "lru_percpu_hash": (MapType.LRU_PERCPU_HASH, 4, 8, 4, 0),
    "lpm_trie": (MapType.LPM_TRIE, 8, 8, 8, 1),
}


def make(family: str) -> Map:
    kind, key_size, value_size, entries, flags = FAMILIES[family]
    spec = MapSpec(family, kind, key_size, value_size, entries, flags=flags)
    return create_map(spec, Memory(), ncpus=NCPUS)


def python(m: Map, name: str):
    """The Python method the entry point stands for, bound to `m`."""
    return fastcall.python_method(type(m), name).__get__(m)


def keys_for(m: Map, count: int, rng: random.Random) -> list[bytes]:
    if m.spec.type == MapType.LPM_TRIE:
        return [lpm_key(rng.randrange(33), rng.randbytes(4)) for _ in range(count)]
    if m.spec.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
        return [struct.pack("<I", rng.randrange(10)) for _ in range(count)]  # some out of range
    return [rng.randbytes(m.spec.key_size) for _ in range(count)]


def outcome(call, *args):
    try:
        return ("ok", call(*args))
    except MapError as error:
        return ("error", error.errno, str(error))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_entry_points_installed(family):
    m = make(family)
    assert type(type(m).lookup).__name__ == "method_descriptor"
    assert type(m._fastcall).__name__ == "PyCapsule"
    if not m.percpu:
        assert type(type(m).update).__name__ == "method_descriptor"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_same_results_as_the_python_path(family):
    rng = random.Random(family)
    fast, slow = make(family), make(family)
    keys = keys_for(fast, 12, rng)
    for step in range(300):
        key = rng.choice(keys)
        value = rng.randbytes(fast.spec.value_size)
        flags = rng.choice([0, 0, 0, 1, 2, 4, 8, -1])
        # (per-CPU updates keep their Python path, so both sides are the same there)
        got = outcome(fast.update, key, value, flags)
        want = outcome(python(slow, "update"), key, value, flags)
        assert got == want, step
        probe = rng.choice(keys)
        assert fast.lookup(probe) == python(fast, "lookup")(probe) == slow.lookup(probe)
    assert dict(fast.items()) == dict(slow.items())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_wrong_sizes_are_einval_and_change_nothing(family):
    m = make(family)
    key = keys_for(m, 1, random.Random(1))[0]
    value = b"\1" * m.spec.value_size
    m.update(key, value)
    before = dict(m.items())
    for bad_key in (key[:-1], key + b"\0", b""):
        with pytest.raises(MapError) as caught:
            m.lookup(bad_key)
        assert caught.value.errno == errno.EINVAL
        with pytest.raises(MapError) as caught:
            m.update(bad_key, value)
        assert caught.value.errno == errno.EINVAL
    for bad_value in (value[:-1], value + b"\0"):
        with pytest.raises(MapError) as caught:
            m.update(key, bad_value)
        assert caught.value.errno == errno.EINVAL
    assert dict(m.items()) == before


def test_native_errors_raise_map_error_with_the_errno():
    m = make("hash")
    m.update(b"a" * 6, b"1" * 8)
    with pytest.raises(MapError) as caught:
        m.update(b"a" * 6, b"2" * 8, 1)  # BPF_NOEXIST
    assert caught.value.errno == errno.EEXIST and caught.value.op == "update"
    with pytest.raises(MapError) as caught:
        m.update(b"b" * 6, b"2" * 8, 2)  # BPF_EXIST
    assert caught.value.errno == errno.ENOENT
    for i in range(7):
        m.update(bytes([i]) * 6, b"3" * 8)
    with pytest.raises(MapError) as caught:
        m.update(b"z" * 6, b"2" * 8)
    assert caught.value.errno == errno.E2BIG
    with pytest.raises(MapError) as caught:
        m.update(b"a" * 6, b"2" * 8, 4)  # BPF_F_LOCK
    assert caught.value.errno == errno.EINVAL
    assert m.lookup(b"a" * 6) == b"1" * 8


def test_other_argument_forms_take_the_python_path():
    m = make("hash")
    key, value = b"k" * 6, b"v" * 8
    m.update(bytearray(key), memoryview(value))
    assert m.lookup(key=key) == value
    assert m.lookup(bytearray(key)) == value
    m.update(key=key, value=b"w" * 8, flags=2)
    assert m[key] == b"w" * 8
    with pytest.raises(MapError):  # bool flags go through Python: True is BPF_NOEXIST
        m.update(key, value, True)
    with pytest.raises(TypeError):
        m.lookup()
    with pytest.raises(TypeError):
        m.update(key)
    with pytest.raises(TypeError):
        m.update(key, value, 0, 0)


def test_flags_wrap_like_ctypes():
    m = make("hash")
    for flags in (2**64, 2**64 + 2, -1):
        fast = outcome(m.update, b"k" * 6, b"v" * 8, flags)
        slow = outcome(python(m, "update"), b"k" * 6, b"v" * 8, flags)
        assert fast == slow


def test_a_class_reading_keys_differently_keeps_its_python_path():
    class Custom(HashMap):
        def _key(self, key, op):
            return super()._key(key.encode() if isinstance(key, str) else key, op)

    m = Custom(MapSpec("c", MapType.HASH, 3, 1, 4), Memory())
    assert not hasattr(m, "_fastcall")
    m.update("abc", b"x")
    assert m.lookup("abc") == b"x" == m.lookup(b"abc")


def test_refcounts_stay_put():
    m = make("hash")
    key, missing, value = b"k" * 6, b"m" * 6, b"v" * 8
    m.update(key, value)
    got = m.lookup(key)
    assert sys.getrefcount(got) == 2  # `got` and the call's argument
    nones = sys.getrefcount(None)
    key_refs, value_refs = sys.getrefcount(key), sys.getrefcount(value)
    for _ in range(100_000):
        m.lookup(missing)
        m.update(key, value)
        m.lookup(key)
    assert abs(sys.getrefcount(None) - nones) < 50
    assert sys.getrefcount(key) == key_refs and sys.getrefcount(value) == value_refs
    p = make("percpu_hash")
    p.update(b"p" * 4, b"x" * 12)
    values = p.lookup(b"p" * 4)
    assert sys.getrefcount(values) == 2  # `values` and the argument
    assert [sys.getrefcount(values[cpu]) for cpu in range(NCPUS)] == [2] * NCPUS  # list, arg


def test_no_leak_over_a_million_calls():
    m = make("hash")
    p = make("percpu_array")
    key, missing, value = b"k" * 6, b"m" * 6, b"v" * 8
    m.update(key, value)
    lookup, update = m.lookup, m.update
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(250_000):
            lookup(key)
            lookup(missing)
            update(key, value)
            p.lookup(b"\1\0\0\0")
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024


def test_threads_calling_lookup_and_update():
    m8 = create_map(MapSpec("t", MapType.HASH, 4, 8, 64), Memory())
    errors = []

    def worker(index: int) -> None:
        try:
            mine = struct.pack("<I", index)
            for i in range(20_000):
                m8.update(mine, struct.pack("<Q", i))
                assert m8.lookup(mine) == struct.pack("<Q", i)
                m8.update(b"\0\0\0\xff", struct.pack("<Q", index))
                assert m8.lookup(b"\0\0\0\xff") is not None
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {m8.lookup(struct.pack("<I", n)) for n in range(6)} == {struct.pack("<Q", 19_999)}
    assert struct.unpack("<Q", m8.lookup(b"\0\0\0\xff"))[0] in range(6)
    assert len(m8) == 7


def test_lpm_longest_prefix_through_the_entry_point():
    m = make("lpm_trie")
    m.update(lpm_key(8, bytes([10, 0, 0, 0])), b"eight...")
    m.update(lpm_key(24, bytes([10, 1, 2, 0])), b"twenty4.")
    assert m.lookup(lpm_key(32, bytes([10, 1, 2, 3]))) == b"twenty4."
    assert m.lookup(lpm_key(32, bytes([10, 9, 2, 3]))) == b"eight..."
    assert m.lookup(lpm_key(32, bytes([11, 1, 2, 3]))) is None


def test_disabled_by_environment():
    code = (
        "from pybpf.elf.specs import MapSpec\n"
        "from pybpf.runtime.maps import create_map\n"
        "from pybpf.runtime.maps.base import Map\n"
        "from pybpf.runtime.memory import Memory\n"
        "m = create_map(MapSpec('h', 1, 4, 4, 4), Memory())\n"
        "m.update(b'abcd', b'wxyz')\n"
        "assert m.lookup(b'abcd') == b'wxyz'\n"
        "print(type(type(m).lookup).__name__, hasattr(m, '_fastcall'))\n"
    )
    env = dict(os.environ, PYBPF_NO_FASTCALL="1")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["function", "False"]
