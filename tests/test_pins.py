"""Pinning in embedded mode (`pybpf.pins`) and libbpf's pin calls: pinned things outlive objects."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf import libbpf, pins
from pybpf.pins import PinError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COUNTER = EXAMPLES / "xdp_counter.o"
UDP = bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10) + bytes(8)
KEY = struct.pack("<I", 17)


@pytest.fixture(autouse=True)
def empty_namespace():
    yield
    for path in list(pins.pins()):
        pins.unpin(path)


def test_a_pinned_map_and_program_outlive_their_object_until_unpinned():
    obj = pybpf.load(COUNTER)
    counts = obj.maps["proto_count"]
    prog = obj.programs["xdp_count"]
    prog.test_run(UDP)
    counts.pin("/sys/fs/bpf/counts")
    prog.pin("/sys/fs/bpf/prog")
    memory = obj.context.memory
    obj.close()
    assert pins.get("/sys/fs/bpf/counts") is counts
    assert counts[KEY] == struct.pack("<Q", 1)
    assert prog.test_run(UDP).retval == 2  # still loaded: the pin holds it
    assert counts[KEY] == struct.pack("<Q", 2)
    assert counts.value_region in list(memory)
    pins.unpin("/sys/fs/bpf/counts")
    assert counts.value_region not in list(memory)  # closed with its last pin
    with pytest.raises(PinError) as caught:
        pins.get("/sys/fs/bpf/counts")
    assert caught.value.errno == errno.ENOENT


def test_object_pin_pins_every_map_and_program_by_name():
    with pybpf.load(COUNTER) as obj:
        obj.load()
        obj.pin("/sys/fs/bpf/counter")
        assert "/sys/fs/bpf/counter/xdp_count" in pins.pins()
        assert pins.get("/sys/fs/bpf/counter/proto_count") is obj.maps["proto_count"]
        obj.unpin("/sys/fs/bpf/counter")
        assert not pins.pins()


@pytest.mark.parametrize(
    "path, code",
    [("relative", errno.EINVAL), ("/sys/fs/bpf/../x", errno.EINVAL), ("/", errno.EINVAL)],
)
def test_bad_pin_paths_are_refused(path, code):
    with pybpf.load(COUNTER) as obj, pytest.raises(PinError) as caught:
        obj.maps["proto_count"].pin(path)
    assert caught.value.errno == code


def test_libbpf_pin_and_get():
    obj = libbpf.bpf_object__open_file(COUNTER)
    assert libbpf.bpf_object__load(obj) == 0
    counts = libbpf.bpf_object__find_map_by_name(obj, "proto_count")
    fd = libbpf.bpf_map__fd(counts)
    assert libbpf.bpf_obj_pin(fd, "/sys/fs/bpf/m") == 0
    assert libbpf.bpf_obj_pin(fd, "/sys/fs/bpf/m") == -errno.EEXIST
    assert libbpf.bpf_obj_pin(999_999, "/sys/fs/bpf/other") == -errno.EBADF
    assert libbpf.bpf_obj_get("/sys/fs/bpf/nothing") == -errno.ENOENT
    libbpf.bpf_object__close(obj)
    again = libbpf.bpf_obj_get("/sys/fs/bpf/m")
    assert again > 0
    key = bytearray(KEY)
    value = bytearray(struct.pack("<Q", 5))
    assert libbpf.bpf_map_update_elem(again, key, value) == 0
    out = bytearray(8)
    assert libbpf.bpf_map_lookup_elem(again, key, out) == 0
    assert bytes(out) == struct.pack("<Q", 5)
    assert libbpf.bpf_map__unpin(counts, "/sys/fs/bpf/m") == 0
    assert libbpf.bpf_map__unpin(counts, "/sys/fs/bpf/m") == -errno.ENOENT


def test_libbpf_program_pin_gives_back_the_same_program():
    obj = libbpf.bpf_object__open_file(COUNTER)
    assert libbpf.bpf_object__load(obj) == 0
    prog = libbpf.bpf_object__find_program_by_name(obj, "xdp_count")
    assert libbpf.bpf_program__pin(prog, "/sys/fs/bpf/p") == 0
    assert libbpf.bpf_obj_get("/sys/fs/bpf/p") == libbpf.bpf_program__fd(prog)
    assert libbpf.bpf_program__unpin(prog, "/sys/fs/bpf/other") == -errno.ENOENT
    assert libbpf.bpf_program__unpin(prog, "/sys/fs/bpf/p") == 0
    libbpf.bpf_object__close(obj)
