"""Native indexing of capture files: where each frame of a pcap or pcapng file lies.

Replaying millions of frames cannot afford a Python step per frame, so the
record headers of a memory-mapped capture are walked in native code (LLVM
IR built here, compiled once per process by `runtime.native`), which fills
an array of `IndexEntry` (where the frame's bytes are, how many, which
interface, where its record starts) in batches. The walk stops, and says
why in `IndexState.status`, at the end of the file, when the batch is full,
at damage (a record cut short, a pcapng block whose lengths disagree), and
at a pcapng section or interface header block, which Python reads
(`hooks.captures`) before resuming after it.

Formats (`kind`): PCAP_LE / PCAP_BE (the byte order of the file's magic;
records of 16-byte headers: seconds, sub-seconds, captured and original
lengths), PCAPNG_LE / PCAPNG_BE (blocks of type, total length, body,
total length: enhanced and simple packet blocks give frames, others are
skipped).
"""

from __future__ import annotations

import ctypes
from enum import IntEnum

from llvmlite import ir

from ..runtime.native.compiler import NativeModule
from ..runtime.native.irblocks import I32, I64, i32, i64, load, store

__all__ = ["CAPTURE_INDEX", "IndexEntry", "IndexState", "Kind", "Status", "index_records"]


class Kind(IntEnum):
    """The file's format and byte order."""

    PCAP_LE = 0
    PCAP_BE = 1
    PCAPNG_LE = 2
    PCAPNG_BE = 3


class Status(IntEnum):
    """Why a walk stopped (`IndexState.status`)."""

    END = 0  # at the end of the file, on a record boundary
    FULL = 1  # the batch is full; resume at `next`
    TRUNCATED_HEADER = 2  # fewer bytes left than a record or block header
    TRUNCATED_DATA = 3  # a record's or block's data runs past the end of the file
    BAD_BLOCK = 4  # a pcapng block whose lengths are impossible or disagree
    HEADER_BLOCK = 5  # a pcapng section or interface header block at `next`
    BAD_RECORD = 6  # a pcap record longer than any capture allows


class IndexEntry(ctypes.Structure):
    """One frame: its bytes at `data` (file offset), `length` of them, its interface
    (pcapng; 0 in pcap) and the offset of its record (for the timestamp)."""

    _fields_ = [
        ("data", ctypes.c_uint64),
        ("record", ctypes.c_uint64),
        ("length", ctypes.c_uint32),
        ("iface", ctypes.c_uint32),
    ]


class IndexState(ctypes.Structure):
    """Where the walk stopped (`next`, a file offset) and why (`status`)."""

    _fields_ = [("next", ctypes.c_uint64), ("status", ctypes.c_uint32), ("_pad", ctypes.c_uint32)]


MAX_FRAME = 0x40000
"""The longest frame a pcap record may hold (libpcap's MAXIMUM_SNAPLEN, 262144)."""

_SHB, _IDB, _SPB, _EPB = 0x0A0D0D0A, 1, 3, 6
_ENTRY = ctypes.sizeof(IndexEntry)


def _build(module: ir.Module) -> None:
    # i64 capture_index(i64 buf, i64 len, i64 pos, i32 kind, i64 out, i64 max, i64 state)
    fn_type = ir.FunctionType(I64, [I64, I64, I64, I32, I64, I64, I64])
    fn = ir.Function(module, fn_type, name="pybpf_capture_index")
    buf, size, start, kind, out, limit, state = fn.args
    entry = fn.append_basic_block("entry")
    b = ir.IRBuilder(entry)
    pos_slot = b.alloca(I64, name="pos")
    count_slot = b.alloca(I64, name="count")
    b.store(start, pos_slot)
    b.store(i64(0), count_slot)
    big_endian = b.trunc(b.and_(kind, i32(1)), ir.IntType(1))
    is_ng = b.icmp_unsigned("!=", b.and_(kind, i32(2)), i32(0))

    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    status_slot = b.alloca(I32, name="status")
    b.branch(loop)

    def u32_at(builder: ir.IRBuilder, at: ir.Value) -> ir.Value:
        raw = load(builder, builder.add(buf, at), I32)
        return builder.select(big_endian, builder.bswap(raw), raw)

    def stop(builder: ir.IRBuilder, status: Status) -> None:
        builder.store(i32(status), status_slot)
        builder.branch(done)

    def check(builder: ir.IRBuilder, cond: ir.Value, status: Status, name: str) -> ir.IRBuilder:
        fail = fn.append_basic_block(f"{name}_fail")
        ok = fn.append_basic_block(f"{name}_ok")
        builder.cbranch(cond, fail, ok)
        stop(ir.IRBuilder(fail), status)
        return ir.IRBuilder(ok)

    def emit(builder: ir.IRBuilder, data: ir.Value, record: ir.Value, length, iface) -> None:
        count = builder.load(count_slot)
        slot = builder.add(out, builder.mul(count, i64(_ENTRY)))
        store(builder, data, slot)
        store(builder, record, builder.add(slot, i64(8)))
        store(builder, length, builder.add(slot, i64(16)))
        store(builder, iface, builder.add(slot, i64(20)))
        builder.store(builder.add(count, i64(1)), count_slot)

    b = ir.IRBuilder(loop)
    pos = b.load(pos_slot)
    b = check(b, b.icmp_unsigned("==", pos, size), Status.END, "end")
    b = check(b, b.icmp_unsigned("==", b.load(count_slot), limit), Status.FULL, "full")
    left = b.sub(size, pos)
    pcap_block = fn.append_basic_block("pcap")
    ng_block = fn.append_basic_block("pcapng")
    b.cbranch(is_ng, ng_block, pcap_block)

    # -- pcap: a 16-byte record header, then incl_len bytes
    b = ir.IRBuilder(pcap_block)
    b = check(b, b.icmp_unsigned("<", left, i64(16)), Status.TRUNCATED_HEADER, "pcap_hdr")
    incl = b.zext(u32_at(b, b.add(pos, i64(8))), I64)
    b = check(b, b.icmp_unsigned(">", incl, i64(MAX_FRAME)), Status.BAD_RECORD, "pcap_len")
    b = check(
        b, b.icmp_unsigned(">", incl, b.sub(left, i64(16))), Status.TRUNCATED_DATA, "pcap_data"
    )
    emit(b, b.add(pos, i64(16)), pos, b.trunc(incl, I32), i32(0))
    b.store(b.add(pos, b.add(incl, i64(16))), pos_slot)
    b.branch(loop)

    # -- pcapng: type, total length, body, total length
    b = ir.IRBuilder(ng_block)
    b = check(b, b.icmp_unsigned("<", left, i64(12)), Status.TRUNCATED_HEADER, "ng_hdr")
    btype = u32_at(b, pos)
    blen = b.zext(u32_at(b, b.add(pos, i64(4))), I64)
    bad_len = b.or_(
        b.icmp_unsigned("<", blen, i64(12)),
        b.icmp_unsigned("!=", b.and_(blen, i64(3)), i64(0)),
    )
    b = check(b, bad_len, Status.BAD_BLOCK, "ng_len")
    b = check(b, b.icmp_unsigned(">", blen, left), Status.TRUNCATED_DATA, "ng_data")
    trailer = b.zext(u32_at(b, b.sub(b.add(pos, blen), i64(4))), I64)
    b = check(b, b.icmp_unsigned("!=", trailer, blen), Status.BAD_BLOCK, "ng_trailer")
    header = b.or_(b.icmp_unsigned("==", btype, i32(_SHB)), b.icmp_unsigned("==", btype, i32(_IDB)))
    b = check(b, header, Status.HEADER_BLOCK, "ng_section")
    next_pos = b.add(pos, blen)
    epb = fn.append_basic_block("epb")
    spb = fn.append_basic_block("spb")
    other = fn.append_basic_block("other")
    advance = fn.append_basic_block("advance")
    switch = b.switch(btype, other)
    switch.add_case(i32(_EPB), epb)
    switch.add_case(i32(_SPB), spb)

    b = ir.IRBuilder(epb)  # iface, ts_high, ts_low, caplen, origlen, data
    b = check(b, b.icmp_unsigned("<", blen, i64(32)), Status.BAD_BLOCK, "epb_len")
    caplen = b.zext(u32_at(b, b.add(pos, i64(20))), I64)
    b = check(b, b.icmp_unsigned(">", caplen, b.sub(blen, i64(32))), Status.BAD_BLOCK, "epb_cap")
    emit(b, b.add(pos, i64(28)), pos, b.trunc(caplen, I32), u32_at(b, b.add(pos, i64(8))))
    b.branch(advance)

    b = ir.IRBuilder(spb)  # origlen, data (as much as the block holds)
    b = check(b, b.icmp_unsigned("<", blen, i64(16)), Status.BAD_BLOCK, "spb_len")
    orig = b.zext(u32_at(b, b.add(pos, i64(8))), I64)
    room = b.sub(blen, i64(16))
    caplen = b.select(b.icmp_unsigned("<", orig, room), orig, room)
    emit(b, b.add(pos, i64(12)), pos, b.trunc(caplen, I32), i32(0))
    b.branch(advance)

    ir.IRBuilder(other).branch(advance)
    b = ir.IRBuilder(advance)
    b.store(next_pos, pos_slot)
    b.branch(loop)

    b = ir.IRBuilder(done)
    store(b, b.load(pos_slot), state)
    store(b, b.load(status_slot), b.add(state, i64(8)))
    b.ret(b.load(count_slot))


_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint32,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint64,
)

CAPTURE_INDEX = NativeModule("capture_index", _build, {"pybpf_capture_index": _PROTO})
"""The native module holding `pybpf_capture_index`."""


def index_records(
    base: int, size: int, start: int, kind: Kind, entries: ctypes.Array, state: IndexState
) -> int:
    """Index the records of the capture mapped at `base` (`size` bytes) from offset `start`
    into `entries` (an array of `IndexEntry`); return how many, `state` says where it
    stopped and why."""
    fn = CAPTURE_INDEX.function("pybpf_capture_index")
    return fn(
        base,
        size,
        start,
        int(kind),
        ctypes.addressof(entries),
        len(entries),
        ctypes.addressof(state),
    )
