"""The native loops of capture replay: frames from a mapped capture through a
JIT-compiled XDP or tc program, verdicts tallied and frames written out as pcap records.

`pybpf_xdp_replay` runs frames `start`..`n` of an array of `IndexEntry`
(`capture_index`): it copies each into the packet buffer of one XDP frame
(`hooks.packets.XdpFrame`, set up once), points the context's data
pointers at it, calls the program's native entry on the run's `RunState`,
and appends the frame as the program left it (data to data_end, with the
original record's timestamp) as a pcap record to the output buffer of its
action, counting frames and bytes per action. No Python runs between
frames. `pybpf_skb_replay` does the same for tc programs with an sk_buff
(`hooks.packets.SkbPacket`): the frame after `NET_SKB_PAD` bytes of
headroom, the `__sk_buff` copied from a template and given the fields the
kernel derives from the frame (len, wire_len, pkt_type, protocol as
`eth_type_trans` on the loopback device), the buffer pointers reset.

It stops early, with the reason in `ReplayStop`, when Python must act: an
output buffer might not hold another frame (flush it, resume), a frame is
longer than an XDP frame's linear part (run it in Python as a multi-buffer
frame), or a Python helper stopped the run (a tail call made in Python, an
exception: finish the run in Python). The first two stop before the frame
runs, the last after.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from enum import IntEnum

from llvmlite import ir

from ..engine.jit.abi import STATUS_TAIL_DONE, RunState
from ..platform.contexts import SK_BUFF, XDP_MD
from ..platform.verdicts import TC_VERDICTS, XDP_ACTIONS
from ..runtime.memory import pointer_slots_of
from ..runtime.native.compiler import NativeModule
from ..runtime.native.irblocks import I8, I32, I64, PTR, i32, i64, load, memcpy, store
from .capture_index import IndexEntry
from .packets import NET_SKB_PAD, PAGE_SIZE, SKB_MAX_LINEAR, SKB_SHARED_INFO, XDP_PACKET_HEADROOM

__all__ = [
    "ACTIONS",
    "TC_VERDICTS",
    "OutBuffer",
    "out_buffers",
    "REPLAY_LOOP",
    "ReplayStop",
    "STOP_AT_REDIRECT",
    "StopReason",
    "TsMode",
]

ACTIONS = XDP_ACTIONS
"""XDP actions by value; any other value counts as aborted."""

# tc verdicts (TC_VERDICTS) by value + 1; any other value counts as unspec, which
# the kernel treats as its default action.

LINEAR_MAX = PAGE_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO
"""The longest frame the linear part of an XDP frame holds (3520 bytes)."""


@dataclass(frozen=True)
class LoopKind:
    """What differs between the XDP and the sk_buff loop."""

    symbol: str
    headroom: int
    linear_max: int
    buckets: tuple[str, ...]
    bias: int  # r0 (as a signed 32-bit value) + bias = the bucket
    skb: bool
    redirect: int  # the bucket of a redirect verdict (XDP_REDIRECT, TC_ACT_REDIRECT)


XDP_LOOP = LoopKind(
    "pybpf_xdp_replay",
    XDP_PACKET_HEADROOM,
    LINEAR_MAX,
    ACTIONS,
    0,
    False,
    ACTIONS.index("redirect"),
)
SKB_LOOP = LoopKind(
    "pybpf_skb_replay",
    NET_SKB_PAD,
    SKB_MAX_LINEAR,
    TC_VERDICTS,
    1,
    True,
    TC_VERDICTS.index("redirect"),
)

FRAME_ROOM = 16 + PAGE_SIZE
"""The most bytes one output record may take (header and a frame grown to the page)."""


class StopReason(IntEnum):
    """Why the loop returned (`ReplayStop.reason`)."""

    DONE = 0  # every frame ran
    BUFFERS_FULL = 1  # an output buffer has no room for another record (frame not run)
    TOO_LONG = 2  # the frame needs fragments (not run)
    IN_PYTHON = 3  # a Python helper stopped the run (the frame ran; r0 as it returned)
    REDIRECTED = 4  # with STOP_AT_REDIRECT: the frame's record is the last of its bucket


STOP_AT_REDIRECT = 1
"""Loop flag: return after each redirect verdict, so that the caller can read the
target the helper recorded (one per run) and send the frame there."""


class TsMode(IntEnum):
    """How record timestamps are carried over."""

    ZERO = 0  # none to carry (pcapng input: written as 0)
    COPY = 1  # little-endian pcap input
    SWAP = 2  # big-endian pcap input


class OutBuffer(ctypes.Structure):
    """One action's output: pcap records at `base` (`length` of `capacity` bytes used),
    and how many frames and frame bytes went there in all."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("capacity", ctypes.c_uint64),
        ("length", ctypes.c_uint64),
        ("frames", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
    ]


def out_buffers(count: int, size: int) -> tuple[ctypes.Array, list[ctypes.Array]]:
    """`count` `OutBuffer`s (an array for the loop) over native buffers of `size` bytes
    each (returned too: they must live as long as the array)."""
    array = (OutBuffer * count)()
    buffers = [ctypes.create_string_buffer(size) for _ in range(count)]
    for out, buf in zip(array, buffers, strict=True):
        out.base, out.capacity = ctypes.addressof(buf), size
    return array, buffers


class ReplayStop(ctypes.Structure):
    """Where and why the loop returned; `invalid` counts actions above XDP_REDIRECT,
    `frames` and `bytes` the input frames run natively (every call adds to them)."""

    _fields_ = [
        ("index", ctypes.c_uint64),
        ("reason", ctypes.c_uint64),
        ("r0", ctypes.c_uint64),
        ("invalid", ctypes.c_uint64),
        ("frames", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
    ]


_SLOTS = pointer_slots_of(XDP_MD)
assert _SLOTS == pointer_slots_of(SK_BUFF)  # one slot numbering serves both loops
_SKB_FIELD = {n: SK_BUFF.field(n).offset for n in ("len", "pkt_type", "protocol", "wire_len")}
_RUN = {name: getattr(RunState, name).offset for name, _ in RunState._fields_}
_OUT = {name: getattr(OutBuffer, name).offset for name, _ in OutBuffer._fields_}
_STOP = {name: getattr(ReplayStop, name).offset for name, _ in ReplayStop._fields_}
_ENTRY = {name: getattr(IndexEntry, name).offset for name, _ in IndexEntry._fields_}
_OUT_SIZE = ctypes.sizeof(OutBuffer)
_ENTRY_SIZE = ctypes.sizeof(IndexEntry)


def _build(module: ir.Module) -> None:
    _build_loop(module, XDP_LOOP)
    _build_loop(module, SKB_LOOP)


def _build_loop(module: ir.Module, kind: LoopKind) -> None:
    # void replay(entry, run, ctx, file, entries, n, start, packet, pointers, outs, ts_mode,
    #             stop, ctx_template, flags)
    args = [I64] * 14
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), args), name=kind.symbol)
    entry, run, ctx, file, entries, n, start, packet, ptrs, outs, ts_mode, stop, template, flags = (
        fn.args
    )
    program_type = ir.FunctionType(I64, [I64] * 6 + [PTR])

    b = ir.IRBuilder(fn.append_basic_block("entry"))
    index = b.alloca(I64, name="index")
    b.store(start, index)
    head = b.add(packet, i64(kind.headroom))
    loop = fn.append_basic_block("loop")
    b.branch(loop)

    def finish(builder: ir.IRBuilder, reason: StopReason, r0: ir.Value | None = None) -> None:
        store(builder, builder.load(index), builder.add(stop, i64(_STOP["index"])))
        store(builder, i64(reason), builder.add(stop, i64(_STOP["reason"])))
        if r0 is not None:
            store(builder, r0, builder.add(stop, i64(_STOP["r0"])))
        builder.ret_void()

    def guard(builder: ir.IRBuilder, cond: ir.Value, reason: StopReason, name: str):
        out = fn.append_basic_block(f"{name}_stop")
        ok = fn.append_basic_block(f"{name}_ok")
        builder.cbranch(cond, out, ok)
        finish(ir.IRBuilder(out), reason)
        return ir.IRBuilder(ok)

    def slot_address(builder: ir.IRBuilder, name: str) -> ir.Value:
        return builder.add(ptrs, i64(8 * _SLOTS[name]))

    b = ir.IRBuilder(loop)
    i = b.load(index)
    b = guard(b, b.icmp_unsigned(">=", i, n), StopReason.DONE, "done")
    # Room for one more record in every action's buffer (the verdict is not known yet).
    for k in range(len(kind.buckets)):
        out = b.add(outs, i64(k * _OUT_SIZE))
        used = load(b, b.add(out, i64(_OUT["length"])), I64)
        cap = load(b, b.add(out, i64(_OUT["capacity"])), I64)
        full = b.icmp_unsigned(">", b.add(used, i64(FRAME_ROOM)), cap)
        b = guard(b, full, StopReason.BUFFERS_FULL, f"room{k}")
    e = b.add(entries, b.mul(i, i64(_ENTRY_SIZE)))
    data_at = load(b, b.add(e, i64(_ENTRY["data"])), I64)
    record_at = load(b, b.add(e, i64(_ENTRY["record"])), I64)
    length = b.zext(load(b, b.add(e, i64(_ENTRY["length"])), I32), I64)
    too_long = b.icmp_unsigned(">", length, i64(kind.linear_max))
    b = guard(b, too_long, StopReason.TOO_LONG, "long")

    # The frame, as a driver would place it; the pointers a previous run moved, reset.
    for name, amount in (("frames", i64(1)), ("bytes", length)):
        at = b.add(stop, i64(_STOP[name]))
        store(b, b.add(load(b, at, I64), amount), at)
    memcpy(b, head, b.add(file, data_at), length)
    store(b, head, slot_address(b, "data_meta"))
    store(b, head, slot_address(b, "data"))
    store(b, b.add(head, length), slot_address(b, "data_end"))
    if kind.skb:
        _skb_context(b, ctx, template, head, length, packet, slot_address)
    store(b, i32(0), b.add(run, i64(_RUN["tail_calls"])))
    program = b.inttoptr(entry, program_type.as_pointer())
    zero = i64(0)
    r0 = b.call(program, [ctx, zero, zero, zero, zero, zero, b.inttoptr(run, PTR)])
    status_at = b.add(run, i64(_RUN["status"]))
    status = load(b, status_at, I32)
    tail_done = fn.append_basic_block("tail_done")
    in_python = fn.append_basic_block("in_python")
    verdict = fn.append_basic_block("verdict")
    ran = b.block
    switch = b.switch(status, in_python)
    switch.add_case(i32(0), verdict)
    switch.add_case(i32(STATUS_TAIL_DONE), tail_done)

    t = ir.IRBuilder(tail_done)  # the Python fallback ran a tail-call chain: its r0
    tail_r0 = load(t, t.add(run, i64(_RUN["tail_r0"])), I64)
    store(t, i32(0), status_at)
    t.branch(verdict)

    finish(ir.IRBuilder(in_python), StopReason.IN_PYTHON, r0)

    b = ir.IRBuilder(verdict)
    result = b.phi(I64)
    result.add_incoming(r0, ran)
    result.add_incoming(tail_r0, tail_done)
    # The bucket: r0 as a signed 32-bit value, plus the kind's bias.
    action = b.add(b.sext(b.trunc(result, I32), I64), i64(kind.bias))
    valid = b.icmp_unsigned("<", action, i64(len(kind.buckets)))
    invalid_at = b.add(stop, i64(_STOP["invalid"]))
    invalid = load(b, invalid_at, I64)
    store(b, b.select(valid, invalid, b.add(invalid, i64(1))), invalid_at)
    bucket = b.select(valid, action, i64(0))  # unknown: aborted (XDP), unspec (tc)
    out = b.add(outs, b.mul(bucket, i64(_OUT_SIZE)))
    start_ptr = load(b, slot_address(b, "data"), I64)
    end_ptr = load(b, slot_address(b, "data_end"), I64)
    flen = b.sub(end_ptr, start_ptr)
    used_at = b.add(out, i64(_OUT["length"]))
    used = load(b, used_at, I64)
    rec = b.add(load(b, b.add(out, i64(_OUT["base"])), I64), used)
    sec = load(b, b.add(file, record_at), I32)
    frac = load(b, b.add(b.add(file, record_at), i64(4)), I32)
    swap = b.icmp_unsigned("==", ts_mode, i64(TsMode.SWAP))
    keep = b.icmp_unsigned("!=", ts_mode, i64(TsMode.ZERO))
    sec = b.select(keep, b.select(swap, b.bswap(sec), sec), i32(0))
    frac = b.select(keep, b.select(swap, b.bswap(frac), frac), i32(0))
    store(b, sec, rec)
    store(b, frac, b.add(rec, i64(4)))
    flen32 = b.trunc(flen, I32)
    store(b, flen32, b.add(rec, i64(8)))
    store(b, flen32, b.add(rec, i64(12)))
    memcpy(b, b.add(rec, i64(16)), start_ptr, flen)
    store(b, b.add(used, b.add(flen, i64(16))), used_at)
    frames_at = b.add(out, i64(_OUT["frames"]))
    store(b, b.add(load(b, frames_at, I64), i64(1)), frames_at)
    bytes_at = b.add(out, i64(_OUT["bytes"]))
    store(b, b.add(load(b, bytes_at, I64), flen), bytes_at)
    b.store(b.add(i, i64(1)), index)
    at_redirect = b.and_(
        b.icmp_unsigned("==", bucket, i64(kind.redirect)),
        b.icmp_unsigned("!=", b.and_(flags, i64(STOP_AT_REDIRECT)), i64(0)),
    )
    redirected = fn.append_basic_block("redirected")
    b.cbranch(at_redirect, redirected, loop)
    finish(ir.IRBuilder(redirected), StopReason.REDIRECTED)


def _skb_context(b, ctx, template, head, length, packet, slot_address) -> None:
    """The __sk_buff of a new frame: the template, then what eth_type_trans derives."""
    memcpy(b, ctx, template, i64(SK_BUFF.size))
    store(b, b.trunc(length, I32), b.add(ctx, i64(_SKB_FIELD["len"])))
    store(b, b.trunc(length, I32), b.add(ctx, i64(_SKB_FIELD["wire_len"])))
    # pkt_type: all-zero destination (the loopback device's address) PACKET_HOST (0),
    # another group address PACKET_MULTICAST (2), the rest PACKET_OTHERHOST (3).
    low = load(b, head, I32)
    high = b.zext(load(b, b.add(head, i64(4)), ir.IntType(16)), I32)
    host = b.icmp_unsigned("==", b.or_(low, high), i32(0))
    group = b.icmp_unsigned("!=", b.and_(load(b, head, I8), ir.Constant(I8, 1)), ir.Constant(I8, 0))
    pkt_type = b.select(host, i32(0), b.select(group, i32(2), i32(3)))
    store(b, pkt_type, b.add(ctx, i64(_SKB_FIELD["pkt_type"])))
    # protocol: the EtherType, or for an 802.3 length field ETH_P_802_3 (1) when the
    # payload starts ffff (raw IPX), else ETH_P_802_2 (4); kept in network byte order.
    be = b.zext(b.bswap(load(b, b.add(head, i64(12)), ir.IntType(16))), I32)
    raw = b.icmp_unsigned(
        "==", load(b, b.add(head, i64(14)), ir.IntType(16)), ir.Constant(ir.IntType(16), 0xFFFF)
    )
    llc = b.select(raw, i32(1), i32(4))
    proto = b.select(b.icmp_unsigned("<", be, i32(0x600)), llc, be)
    swapped = b.zext(b.bswap(b.trunc(proto, ir.IntType(16))), I32)
    store(b, swapped, b.add(ctx, i64(_SKB_FIELD["protocol"])))
    # The buffer around the frame (growing helpers may have moved to a bigger one).
    store(b, packet, slot_address(b, "head"))
    store(b, b.add(packet, i64(PAGE_SIZE - SKB_SHARED_INFO)), slot_address(b, "end"))


_PROTO = ctypes.CFUNCTYPE(None, *([ctypes.c_uint64] * 14))

REPLAY_LOOP = NativeModule(
    "capture_replay", _build, {XDP_LOOP.symbol: _PROTO, SKB_LOOP.symbol: _PROTO}
)
"""The native module holding `pybpf_xdp_replay` and `pybpf_skb_replay`."""
