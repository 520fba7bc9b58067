"""`pybpf.libbpf`: libbpf's names over the API, returning 0 or -errno as libbpf 1.x."""

from __future__ import annotations

import ctypes
import errno

import pytest

from pybpf import libbpf as lb
from test_api import SOCKET_FILTER, UDP, XDP_COUNTER, XDP_DROP, XDP_PASS, packet, u32, u64


@pytest.fixture
def obj():
    handle = lb.bpf_object__open_file(XDP_COUNTER)
    assert handle is not None
    yield handle
    lb.bpf_object__close(handle)


def test_open_missing_file_sets_errno(tmp_path):
    assert lb.bpf_object__open_file(tmp_path / "nope.o") is None
    assert lb.libbpf_errno() == errno.ENOENT
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an elf")
    assert lb.bpf_object__open_file(bad) is None


def test_find_by_name(obj):
    assert lb.bpf_object__find_program_by_name(obj, "nope") is None
    assert lb.libbpf_errno() == errno.ENOENT
    assert lb.bpf_object__find_map_by_name(obj, "nope") is None
    assert lb.bpf_object__find_map_by_name(obj, "xdp_coun.bss") is obj.maps[".bss"]
    prog = lb.bpf_object__find_program_by_name(obj, "xdp_count")
    assert lb.bpf_program__name(prog) == "xdp_count"


def test_map_calls(obj):
    fd = lb.bpf_map__fd(lb.bpf_object__find_map_by_name(obj, "proto_count"))
    assert fd >= 3 and fd == lb.bpf_map__fd(obj.maps["proto_count"])
    value = bytearray(8)
    assert lb.bpf_map_lookup_elem(fd, u32(UDP), value) == -errno.ENOENT
    assert lb.bpf_map_update_elem(fd, u32(UDP), u64(7), lb.BPF_NOEXIST) == 0
    assert lb.bpf_map_update_elem(fd, u32(UDP), u64(8), lb.BPF_NOEXIST) == -errno.EEXIST
    assert lb.bpf_map_update_elem(fd, u32(UDP), u64(8), 99) == -errno.EINVAL
    assert lb.bpf_map_update_elem(fd, b"\x11", u64(8)) == -errno.EINVAL
    assert lb.bpf_map_lookup_elem(fd, u32(UDP), value) == 0 and bytes(value) == u64(7)
    out = (ctypes.c_uint64 * 1)()
    assert lb.bpf_map_lookup_elem(fd, u32(UDP), out) == 0 and out[0] == 7
    key = bytearray(4)
    assert lb.bpf_map_get_next_key(fd, None, key) == 0 and bytes(key) == u32(UDP)
    assert lb.bpf_map_get_next_key(fd, key, key) == -errno.ENOENT
    assert lb.bpf_map_delete_elem(fd, u32(UDP)) == 0
    assert lb.bpf_map_delete_elem(fd, u32(UDP)) == -errno.ENOENT
    assert lb.bpf_map_update_elem(12345, u32(1), u64(1)) == -errno.EBADF


def test_test_run_opts(obj):
    prog = lb.bpf_object__find_program_by_name(obj, "xdp_count")
    fd = lb.bpf_program__fd(prog)
    data = packet(53)
    out = bytearray(len(data))
    opts = lb.bpf_test_run_opts(data_in=data, data_out=out, repeat=3)
    assert lb.bpf_prog_test_run_opts(fd, opts) == 0
    assert opts.retval == XDP_DROP and opts.duration > 0
    assert opts.data_size_out == len(data) and bytes(out) == data
    bss = lb.bpf_map__fd(obj.maps[".bss"])
    value = bytearray(8)
    assert lb.bpf_map_lookup_elem(bss, u32(0), value) == 0 and bytes(value) == u64(3)
    small = lb.bpf_test_run_opts(data_in=packet(80), data_out=bytearray(4))
    assert lb.bpf_prog_test_run_opts(fd, small) == -errno.ENOSPC
    assert small.retval == XDP_PASS and small.data_size_out == len(data)
    short = lb.bpf_test_run_opts(data_in=b"\0" * 8)
    assert lb.bpf_prog_test_run_opts(fd, short) == -errno.EINVAL
    assert lb.bpf_prog_test_run_opts(999, opts) == -errno.EBADF


def test_load_freezes_rodata(obj):
    assert lb.bpf_object__load(obj) == 0
    fd = lb.bpf_map__fd(obj.maps[".rodata"])
    assert lb.bpf_map_update_elem(fd, u32(0), b"\x50\x00") == -errno.EPERM


def test_socket_filter_by_fd():
    obj = lb.bpf_object__open_file(SOCKET_FILTER)
    try:
        fd = lb.bpf_program__fd(lb.bpf_object__find_program_by_name(obj, "filter_a"))
        opts = lb.bpf_test_run_opts(data_in=packet(53))
        assert lb.bpf_prog_test_run_opts(fd, opts) == 0
        assert opts.retval == len(packet(53)) - 14
    finally:
        lb.bpf_object__close(obj)
    assert lb.bpf_prog_test_run_opts(fd, opts) == -errno.EBADF


def test_ring_buffer_needs_a_ringbuf_map(obj):
    fd = lb.bpf_map__fd(obj.maps["proto_count"])
    assert lb.ring_buffer__new(fd, lambda ctx, data, size: 0) is None
    assert lb.libbpf_errno() == errno.EINVAL


def test_ring_buffer_consume_and_poll():
    ringbuf = pytest.importorskip("pybpf.runtime.maps.ringbuf")
    from pybpf.elf.specs import MapSpec
    from pybpf.runtime.memory import Memory

    ring = ringbuf.RingBufMap(MapSpec("events", 27, 0, 0, 4096), Memory())
    fd = lb.bpf_map__fd(ring)
    seen: list[tuple[object, bytes, int]] = []
    rb = lb.ring_buffer__new(fd, lambda ctx, data, size: seen.append((ctx, data, size)), "c")
    assert rb is not None
    assert lb.ring_buffer__poll(rb, 0) == 0
    ring.output(b"abcd")
    ring.output(b"xy")
    assert lb.ring_buffer__consume(rb) == 2
    assert seen == [("c", b"abcd", 4), ("c", b"xy", 2)]
    ring.output(b"z")
    assert lb.ring_buffer__poll(rb, 100) == 1
    stop = lb.ring_buffer__new(fd, lambda ctx, data, size: -7)
    ring.output(b"q")
    assert lb.ring_buffer__consume(stop) == -7
    lb.ring_buffer__free(rb)


def test_ring_buffer_of_an_object():
    obj = lb.bpf_object__open_file(XDP_COUNTER.parent / "xdp_events.o")
    try:
        events = lb.bpf_object__find_map_by_name(obj, "events")
        if events is None:
            pytest.skip(f"ringbuf map not available (errno {lb.libbpf_errno()})")
        seen: list[bytes] = []
        rb = lb.ring_buffer__new(lb.bpf_map__fd(events), lambda ctx, data, size: seen.append(data))
        prog_fd = lb.bpf_program__fd(lb.bpf_object__find_program_by_name(obj, "xdp_events"))
        assert lb.bpf_prog_test_run_opts(prog_fd, lb.bpf_test_run_opts(data_in=packet(53))) == 0
        assert lb.ring_buffer__poll(rb, 100) == 1 and len(seen) == 1
    finally:
        lb.bpf_object__close(obj)
