"""The native pieces of live ports, on memory laid out as the kernel lays it out (no
interface needed): a TPACKET_V3 ring block listed as IndexEntry records, and output
records turned into iovecs for sendmmsg."""

from __future__ import annotations

import ctypes
import struct

from pybpf.hooks.capture_index import IndexEntry
from pybpf.hooks.ports import PACKET_IO, TPACKET3_HDR_SIZE, tpacket_index

BLOCK = 1 << 17


def ring_block(frames: list[bytes], mac: int = 82) -> ctypes.Array:
    """A block as the kernel hands it over: tpacket_block_desc, then tpacket3_hdr records
    (next offset, sec, nsec, snaplen, len, status, mac offset), frames at `mac`."""
    block = ctypes.create_string_buffer(BLOCK)
    first = 48
    struct.pack_into("<IIIIII", block, 0, 3, 0, 1, len(frames), first, 0)
    at = first
    for n, frame in enumerate(frames):
        size = (mac + len(frame) + 15) & ~15
        nxt = size if n + 1 < len(frames) else 0
        struct.pack_into(
            "<IIIIIIHH",
            block,
            at,
            nxt,
            100 + n,
            7,
            len(frame),
            len(frame),
            1 | (n << 8),
            mac,
            mac + 14,
        )
        block[at + mac : at + mac + len(frame)] = frame
        at += size
    return block


def test_a_block_of_many_tiny_frames_is_listed_whole():
    frames = [bytes([n & 0xFF]) * 14 for n in range(1200)]  # more than a 1024 batch
    block = ring_block(frames)
    base = ctypes.addressof(block)
    entries = (IndexEntry * (BLOCK // TPACKET3_HDR_SIZE + 1))()
    n = tpacket_index(base, base, entries)
    assert n == len(frames)
    for k in (0, 1, 1023, 1024, 1199):
        e = entries[k]
        assert ctypes.string_at(base + e.data, e.length) == frames[k]
        assert e.iface == 1 | (k << 8)  # tp_status, for the caller
        assert struct.unpack_from("<I", block, e.record)[0] == 100 + k  # tp_sec


def test_listing_stops_at_the_capacity_given():
    block = ring_block([b"x" * 60] * 10)
    base = ctypes.addressof(block)
    entries = (IndexEntry * 4)()
    assert tpacket_index(base, base, entries) == 4


def test_output_records_become_iovecs_in_batches():
    frames = [bytes([n]) * (60 + n) for n in range(10)]
    records = b"".join(struct.pack("<IIII", 0, 0, len(f), len(f)) + f for f in frames)
    buf = ctypes.create_string_buffer(records, len(records))
    iovecs = ctypes.create_string_buffer(16 * 4)
    resume = ctypes.c_uint64(0)
    fill = PACKET_IO.function("pybpf_records_iovecs")
    seen = []
    while resume.value < len(records):
        n = fill(
            ctypes.addressof(buf),
            len(records),
            ctypes.addressof(iovecs),
            4,
            ctypes.addressof(resume),
        )
        assert 0 < n <= 4
        for k in range(n):
            address, size = struct.unpack_from("<QQ", iovecs, 16 * k)
            seen.append(ctypes.string_at(address, size))
    assert seen == frames
