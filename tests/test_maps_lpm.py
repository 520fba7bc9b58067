"""LPM trie: the kernel's key layout, longest-prefix match, errno, iteration order, a model."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapError, create_map, lpm_key
from pybpf.runtime.memory import Memory

NO_PREALLOC = 1


def new_trie(data_size: int = 4, max_entries: int = 16, memory: Memory | None = None):
    spec = MapSpec("routes", MapType.LPM_TRIE, 4 + data_size, 4, max_entries, flags=NO_PREALLOC)
    return create_map(spec, memory if memory is not None else Memory())


def net(cidr: str) -> bytes:
    network = ipaddress.ip_network(cidr, strict=False)
    return lpm_key(network.prefixlen, network.network_address.packed)


def host(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    return lpm_key(ip.max_prefixlen, ip.packed)


def value(n: int) -> bytes:
    return struct.pack("<I", n)


def test_create_needs_no_prealloc_and_sane_sizes():
    for spec in [
        MapSpec("t", MapType.LPM_TRIE, 8, 4, 16),  # no BPF_F_NO_PREALLOC
        MapSpec("t", MapType.LPM_TRIE, 4, 4, 16, flags=NO_PREALLOC),  # no data bytes
        MapSpec("t", MapType.LPM_TRIE, 4 + 257, 4, 16, flags=NO_PREALLOC),
        MapSpec("t", MapType.LPM_TRIE, 8, 0, 16, flags=NO_PREALLOC),
        MapSpec("t", MapType.LPM_TRIE, 8, 4, 0, flags=NO_PREALLOC),
        MapSpec("t", MapType.LPM_TRIE, 8, 4, 16, flags=NO_PREALLOC | 2),  # NO_COMMON_LRU
    ]:
        with pytest.raises(MapError) as caught:
            create_map(spec, Memory())
        assert (caught.value.errno, caught.value.op) == (errno.EINVAL, "create")


def test_longest_prefix_match_ipv4():
    trie = new_trie()
    for n, cidr in enumerate(["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32"], 1):
        trie[net(cidr)] = value(n)
    assert trie.lookup(host("10.1.2.3")) == value(4)
    assert trie.lookup(host("10.1.2.4")) == value(3)
    assert trie.lookup(host("10.1.3.4")) == value(2)
    assert trie.lookup(host("10.2.3.4")) == value(1)
    assert trie.lookup(host("11.0.0.0")) is None
    # The key's own prefixlen bounds the match, as in the kernel.
    assert trie.lookup(lpm_key(20, bytes([10, 1, 2, 3]))) == value(2)
    assert trie.lookup(lpm_key(0, bytes(4))) is None
    trie[lpm_key(0, bytes(4))] = value(9)  # a default route
    assert trie.lookup(host("11.0.0.0")) == value(9)


def test_longest_prefix_match_ipv6_and_odd_lengths():
    trie = new_trie(data_size=16)
    trie[net("2001:db8::/32")] = value(1)
    trie[net("2001:db8:aaaa::/48")] = value(2)
    trie[net("2001:db8:aaaa:bb00::/57")] = value(3)
    assert trie.lookup(host("2001:db8:aaaa:bb7f::1")) == value(3)
    assert trie.lookup(host("2001:db8:aaaa:bb80::1")) == value(2)  # bit 57 differs
    assert trie.lookup(host("2001:db8:1::1")) == value(1)
    assert trie.lookup(host("2001:db9::1")) is None


UPDATE_CASES = [
    (False, BPF_ANY, 0),
    (True, BPF_ANY, 0),
    (False, BPF_NOEXIST, 0),
    (True, BPF_NOEXIST, errno.EEXIST),
    (False, BPF_EXIST, errno.ENOENT),
    (True, BPF_EXIST, 0),
    (True, 4, errno.EINVAL),
    (False, 3, errno.EINVAL),
]


@pytest.mark.parametrize(("present", "flags", "expected"), UPDATE_CASES)
def test_update_flags_and_errno(present, flags, expected):
    trie = new_trie()
    if present:
        trie[net("192.168.0.0/16")] = value(1)
    before = dict(trie)
    # Bits past the prefix do not make a different key.
    target = lpm_key(16, bytes([192, 168, 7, 7]))
    if expected:
        with pytest.raises(MapError) as caught:
            trie.update(target, value(2), flags)
        assert (caught.value.errno, caught.value.op) == (expected, "update")
        assert dict(trie) == before
    else:
        trie.update(target, value(2), flags)
        assert trie.lookup(host("192.168.1.1")) == value(2) and len(trie) == 1


def test_prefixlen_too_long_full_map_and_delete():
    trie = new_trie(max_entries=2)
    with pytest.raises(MapError) as caught:
        trie.update(lpm_key(33, bytes(4)), value(1))
    assert caught.value.errno == errno.EINVAL
    with pytest.raises(MapError) as caught:
        trie.delete(lpm_key(33, bytes(4)))
    assert caught.value.errno == errno.EINVAL
    trie[net("10.0.0.0/8")] = value(1)
    trie[net("10.0.0.0/16")] = value(2)
    with pytest.raises(MapError) as caught:
        trie[net("10.0.0.0/24")] = value(3)
    assert caught.value.errno == errno.ENOSPC
    trie[net("10.0.0.0/16")] = value(4)  # replacing needs no room (Linux 6.13+)
    with pytest.raises(MapError) as caught:
        trie.delete(net("10.0.0.0/24"))
    assert caught.value.errno == errno.ENOENT
    trie.delete(net("10.0.0.0/8"))
    assert trie.lookup(host("10.1.1.1")) is None
    trie[net("10.0.0.0/24")] = value(3)
    assert trie.lookup(host("10.0.0.1")) == value(3) and len(trie) == 2


def test_get_next_key_is_kernel_post_order():
    trie = new_trie()
    # The example of kernel/bpf/lpm_trie.c's trie_get_next_key comment.
    for cidr in ["192.168.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24"]:
        trie[net(cidr)] = value(0)
    expected = ["192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16"]
    assert list(trie) == [net(c) for c in expected]
    assert trie.get_next_key(net("10.0.0.0/8")) == net(expected[0])  # missing: first
    assert trie.get_next_key(lpm_key(40, bytes(4))) == net(expected[0])  # invalid: first
    assert trie.get_next_key(net(expected[-1])) is None


def test_values_are_regions_that_stay_put():
    memory = Memory()
    trie = new_trie(memory=memory)
    trie[net("10.0.0.0/8")] = value(1)
    trie[net("10.1.0.0/16")] = value(2)
    address = trie.address_of(host("10.1.1.1"))
    assert memory.find(address, 4) is trie.value_region
    memory.write(address, value(7))
    assert trie[net("10.1.0.0/16")] == value(7)
    trie.delete(net("10.0.0.0/8"))
    trie[net("10.1.0.0/16")] = value(8)
    assert trie.address_of(host("10.1.1.1")) == address


def _bits(data: bytes, length: int) -> str:
    return "".join(f"{byte:08b}" for byte in data)[:length]


def _model_lookup(entries: dict[tuple[int, str], bytes], key_len: int, key_bits: str):
    matches = [
        (length, val)
        for (length, bits), val in entries.items()
        if length <= key_len and key_bits.startswith(bits)
    ]
    return max(matches)[1] if matches else None


def _model_order(entries) -> list[tuple[int, str]]:
    # Post-order of a binary trie: a prefix after everything it covers,
    # otherwise 0 before 1 at the first differing bit.
    def key(entry):
        length, bits = entry
        return [int(b) for b in bits] + [2]

    return sorted(entries, key=key)


prefix_ops = st.lists(
    st.tuples(
        st.sampled_from(["update", "delete"]),
        st.integers(0, 16),
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=prefix_ops, probes=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20))
def test_matches_a_python_model(ops, probes):
    trie = new_trie(data_size=2, max_entries=64)
    model: dict[tuple[int, str], bytes] = {}
    for op, length, data, n in ops:
        raw = struct.pack(">H", data)
        entry = (length, _bits(raw, length))
        if op == "update":
            trie.update(lpm_key(length, raw), value(n))
            model[entry] = value(n)
        elif entry in model:
            trie.delete(lpm_key(length, raw))
            del model[entry]
        else:
            with pytest.raises(MapError):
                trie.delete(lpm_key(length, raw))
    for probe in probes:
        raw = struct.pack(">H", probe)
        for key_len in (16, probe % 17):
            assert trie.lookup(lpm_key(key_len, raw)) == _model_lookup(
                model, key_len, _bits(raw, key_len)
            )
    walked = [
        (struct.unpack("=I", k[:4])[0], _bits(k[4:], struct.unpack("=I", k[:4])[0])) for k in trie
    ]
    assert walked == _model_order(model)
    assert len(trie) == len(model)


# -- the real kernel, through bpftool --------------------------------------------

BPFTOOL = shutil.which("bpftool") or (
    "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None
)


def _bpftool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BPFTOOL, "-j", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def kernel_trie(tmp_path):
    if BPFTOOL is None or not os.path.isdir("/sys/fs/bpf"):
        pytest.skip("bpftool or bpffs not available")
    path = f"/sys/fs/bpf/pybpf_lpm_test_{os.getpid()}"
    created = _bpftool(
        "map", "create", path, "type", "lpm_trie", "key", "8", "value", "4",
        "entries", "64", "name", "lpm_test", "flags", "1",
    )  # fmt: skip
    if created.returncode != 0:
        pytest.skip(f"the kernel refused an LPM trie: {created.stderr.strip()}")
    yield path
    os.unlink(path)


def _hexbytes(data: bytes) -> list[str]:
    return [str(byte) for byte in data]


def test_same_as_the_kernel(kernel_trie):
    rng = random.Random(4)
    trie = new_trie(max_entries=64)
    for n in range(40):
        length = rng.choice([0, 8, 12, 16, 20, 24, 28, 32, rng.randrange(33)])
        data = bytes([10, rng.choice([0, 1, 128]), rng.randrange(4), rng.randrange(256)])
        flags = rng.choice(["any", "any", "noexist", "exist"])
        key = lpm_key(length, data)
        result = _bpftool(
            "map", "update", "pinned", kernel_trie, "key", *_hexbytes(key),
            "value", *_hexbytes(value(n)), flags,
        )  # fmt: skip
        mapping = {"any": BPF_ANY, "noexist": BPF_NOEXIST, "exist": BPF_EXIST}
        try:
            trie.update(key, value(n), mapping[flags])
            ours = True
        except MapError:
            ours = False
        assert ours == (result.returncode == 0), (key, flags, result.stderr)
    dumped = json.loads(_bpftool("map", "dump", "pinned", kernel_trie).stdout)
    kernel = [
        (bytes(int(b, 16) for b in e["key"]), bytes(int(b, 16) for b in e["value"])) for e in dumped
    ]
    assert [(k, trie[k]) for k in trie] == kernel
    for _ in range(15):
        probe = host(f"10.{rng.choice([0, 1, 128])}.{rng.randrange(4)}.{rng.randrange(256)}")
        result = _bpftool("map", "lookup", "pinned", kernel_trie, "key", *_hexbytes(probe))
        expected = (
            bytes(int(b, 16) for b in json.loads(result.stdout)["value"])
            if result.returncode == 0
            else None
        )
        assert trie.lookup(probe) == expected
