"""Test runs with the semantics of the kernel's `BPF_PROG_TEST_RUN` (net/bpf/test_run.c).

`test_run(program, prog_type, data=..., ctx=..., repeat=N)` builds the
packet and the context the kernel would build for that program type, runs
the program `repeat` times on them and returns a `TestRunResult` with the
same fields `bpf_prog_test_run_opts` fills in:

* XDP: the packet sits after `XDP_PACKET_HEADROOM` (256) bytes of headroom
  in a native buffer; `ctx` (a `struct xdp_md`) may carry
  ingress_ifindex / rx_queue_index and, as in the kernel, must have
  data_meta = 0 and data_end = len(data); its `data` is the metadata
  length (the first `data` bytes of `data` become metadata). `data_out`
  runs from data_meta to data_end.
* socket_filter, sched_cls, sched_act: a `struct __sk_buff` filled as the
  kernel does after `eth_type_trans` on the loopback device (len,
  pkt_type, protocol, ifindex, data pointers for tc); `ctx` may set only
  mark, priority, ingress_ifindex, ifindex, cb, tstamp, wire_len,
  gso_segs, gso_size and hwtstamp. A socket filter sees the packet from
  the network header on, and its `data_out` has the Ethernet header
  zeroed, as the kernel returns it.

Bad input raises `TestRunError` with the errno the kernel would return.
"""

from __future__ import annotations

import ctypes
import errno
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import NotSupportedError, TestRunError
from ..isa.instruction import Instruction
from ..platform.contexts import SK_BUFF, XDP_MD, ContextAccess, StructLayout, context_access
from ..platform.program_types import ProgramType
from ..runtime.helpers import HelperTable
from ..runtime.memory import Memory, Region

__all__ = [
    "ETH_HLEN",
    "XDP_PACKET_HEADROOM",
    "TestRunError",
    "TestRunResult",
    "test_run",
]

XDP_PACKET_HEADROOM = 256
"""Bytes before the packet in an XDP test run (and in drivers)."""

ETH_HLEN = 14
"""Length of an Ethernet header; the shortest packet a test run accepts."""

PAGE_SIZE = 4096
SKB_SHARED_INFO = 320
"""SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64: the tailroom of both runs."""

NET_SKB_PAD = 64
"""Headroom of an skb test run (NET_SKB_PAD + NET_IP_ALIGN on x86-64)."""

XDP_METADATA_MAX = 32
LOOPBACK_IFINDEX = 1
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535

_PACKET_HOST, _PACKET_BROADCAST, _PACKET_MULTICAST, _PACKET_OTHERHOST = 0, 1, 2, 3
_M32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TestRunResult:
    """What a test run reports: r0 (u32), the packet and context after it, mean ns per run."""

    __test__ = False

    retval: int
    data_out: bytes
    ctx_out: bytes | None
    duration: int


def _engine(program: Any, memory: Memory | None, helpers: HelperTable | None) -> tuple[Any, bool]:
    """An engine for `program`, and whether this call created it (and must close it)."""
    if hasattr(program, "enter") and hasattr(program, "memory"):
        if memory is not None and memory is not program.memory:
            raise ValueError("memory must be the engine's own memory")
        return program, False
    from ..engine.interpreter import DEFAULT_BUDGET, Interpreter

    insns: Iterable[Instruction] = getattr(program, "instructions", program)
    return Interpreter(insns, helpers=helpers, memory=memory, budget=DEFAULT_BUDGET), True


def _ctx_in(ctx: bytes | None, layout: StructLayout) -> bytearray | None:
    # bpf_ctx_init: bytes past the struct must be zero (E2BIG), short input is zero-padded.
    if ctx is None:
        return None
    if any(ctx[layout.size :]):
        raise TestRunError(f"ctx_in has non-zero bytes past struct {layout.name}", errno.E2BIG)
    return bytearray(ctx[: layout.size].ljust(layout.size, b"\0"))


def _get(buf: bytearray | bytes, layout: StructLayout, name: str) -> int:
    f = layout.field(name)
    return int.from_bytes(buf[f.offset : f.end], "little")


def _put(buf: bytearray, layout: StructLayout, name: str, value: int) -> None:
    f = layout.field(name)
    buf[f.offset : f.end] = (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")


class _Packet:
    """A native packet buffer and the region over the part the program may touch."""

    def __init__(self, memory: Memory, total: int, data: bytes, at: int):
        self.buffer = (ctypes.c_ubyte * total)()
        self.base = ctypes.addressof(self.buffer)
        ctypes.memmove(self.base + at, data, len(data))
        self.memory = memory
        self.region: Region | None = None

    def expose(self, start: int, end: int) -> None:
        """Make `[base+start, base+end)` the live `packet` region."""
        chunk = (ctypes.c_ubyte * (end - start)).from_buffer(self.buffer, start)
        self.region = self.memory.add(Region(self.base + start, end - start, True, "packet", chunk))

    def read(self, start: int, end: int) -> bytes:
        """Bytes between two native addresses inside the buffer."""
        return ctypes.string_at(start, max(0, end - start))

    def release(self) -> None:
        """Take the packet out of the region table.

        Helpers that move the packet's bounds (xdp_adjust_head, …) replace
        the region by one over the new bounds, so look for it by place.
        """
        if self.region is None:
            return
        end = self.base + ctypes.sizeof(self.buffer)
        for region in self.memory:
            if region.name == "packet" and self.base <= region.start < end:
                self.memory.remove(region)
        self.region = None


def _run(engine: Any, ctx_addr: int, repeat: int) -> tuple[int, int]:
    # As bpf_test_run: the same context and packet for every repeat (a
    # program that moves the packet's bounds sees them moved on the next
    # run), r0 of the last run, the mean time per run.
    repeat = max(1, repeat)
    run_repeated = getattr(engine, "run_repeated", None)
    start = time.perf_counter_ns()
    if run_repeated is not None:  # the engine's own loop, set-up hoisted out of it
        r0 = run_repeated(ctx_addr, repeat)
    else:
        r0 = 0
        for _ in range(repeat):
            r0 = engine.run(ctx_addr)
    elapsed = time.perf_counter_ns() - start
    return r0 & _M32, max(1, elapsed // repeat)


def _xdp(engine: Any, access: ContextAccess, data: bytes, ctx: bytes | None, repeat: int):
    memory: Memory = engine.memory
    md = _ctx_in(ctx, XDP_MD)
    size = len(data)
    meta = 0
    ingress, queue = LOOPBACK_IFINDEX, 0  # the loopback device's rx queue 0, as the kernel
    if md is not None:
        meta = _get(md, XDP_MD, "data")
        if (
            _get(md, XDP_MD, "data_meta")
            or _get(md, XDP_MD, "data_end") != size
            or meta > size
            or meta % 4
            or meta > XDP_METADATA_MAX
        ):
            raise TestRunError("xdp_md: data_meta must be 0, data_end len(data), data ≤ 32 / 4")
        if _get(md, XDP_MD, "egress_ifindex"):
            raise TestRunError("xdp_md: egress_ifindex must be 0")
        ingress, queue = _get(md, XDP_MD, "ingress_ifindex"), _get(md, XDP_MD, "rx_queue_index")
        if not ingress and queue:
            raise TestRunError("xdp_md: rx_queue_index without ingress_ifindex")
    if size - meta < ETH_HLEN:
        raise TestRunError(f"packet of {size - meta} bytes is shorter than ETH_HLEN")
    headroom = XDP_PACKET_HEADROOM - meta
    if size > PAGE_SIZE - headroom - SKB_SHARED_INFO:
        raise NotSupportedError("multi-buffer (fragmented) XDP test runs")
    packet = _Packet(memory, PAGE_SIZE, data, headroom)
    start = packet.base + headroom
    pointers = {"data_meta": start, "data": start + meta, "data_end": start + size}
    # The frame around the packet, for xdp_adjust_head/tail/meta (frame_sz is a page).
    pointers["hard_start"] = packet.base
    pointers["hard_end"] = packet.base + PAGE_SIZE - SKB_SHARED_INFO
    packet.expose(headroom, headroom + size)
    image = bytearray(XDP_MD.size)
    _put(image, XDP_MD, "ingress_ifindex", ingress)
    _put(image, XDP_MD, "rx_queue_index", queue)
    region = memory.allocate_context(bytes(image), "ctx", access, pointers)
    # The region's native-backed table: what helpers (native or not) moved.
    pointers = region.pointers
    try:
        retval, duration = _run(engine, region.start, repeat)
    finally:
        packet.release()
        memory.remove(region)
    data_out = packet.read(pointers["data_meta"], pointers["data_end"])
    ctx_out = None
    if md is not None:
        _put(md, XDP_MD, "data", pointers["data"] - pointers["data_meta"])
        _put(md, XDP_MD, "data_end", pointers["data_end"] - pointers["data_meta"])
        ctx_out = bytes(md)
    return TestRunResult(retval, data_out, ctx_out, duration)


# Fields of __sk_buff a ctx_in may set (convert___skb_to_skb); everything else must be zero.
_SKB_CTX_IN = ("mark", "priority", "ingress_ifindex", "ifindex", "cb", "tstamp", "wire_len")
_SKB_CTX_IN += ("gso_segs", "gso_size", "hwtstamp")
# Fields the kernel copies back into ctx_out (convert_skb_to___skb).
_SKB_CTX_OUT = ("mark", "priority", "ingress_ifindex", "ifindex", "tstamp", "cb", "wire_len")
_SKB_CTX_OUT += ("gso_segs", "hwtstamp")


def _eth_type_trans(frame: bytes) -> tuple[int, int]:
    """(pkt_type, protocol as the kernel stores it: big-endian u16 read as little-endian)."""
    dest = frame[:6]
    if dest == bytes(6):  # the loopback device's own (all-zero) address
        pkt_type = _PACKET_HOST
    elif dest[0] & 1:
        pkt_type = _PACKET_BROADCAST if dest == b"\xff" * 6 else _PACKET_MULTICAST
    else:
        pkt_type = _PACKET_OTHERHOST
    proto = int.from_bytes(frame[12:14], "big")
    if proto < 0x0600:  # an 802.3 length field: raw 802.3 (IPX) or 802.2 LLC
        proto = 0x0001 if frame[14:16] == b"\xff\xff" else 0x0004
    return pkt_type, int.from_bytes(proto.to_bytes(2, "big"), "little")


_L3_HEADER_MIN = {0x0800: 20, 0x86DD: 40}
"""EtherType → the network header a test run needs in full (IPv4, IPv6)."""


def _check_l3_header(frame: bytes) -> None:
    # Linux 6.18 refuses (EINVAL) an skb test run whose IPv4/IPv6 header is
    # cut short, before running the program (seen with bpftool on this
    # machine; older kernels ran such frames). Follow the newer kernel.
    ethertype = int.from_bytes(frame[12:14], "big")
    need = _L3_HEADER_MIN.get(ethertype)
    if need is not None and len(frame) < ETH_HLEN + need:
        raise TestRunError(
            f"packet of {len(frame)} bytes ends inside its network header "
            f"(EtherType 0x{ethertype:04x} needs {ETH_HLEN + need} bytes)"
        )


def _skb(
    engine: Any,
    access: ContextAccess,
    prog_type: ProgramType,
    data: bytes,
    ctx: bytes | None,
    repeat: int,
):
    memory: Memory = engine.memory
    size = len(data)
    if size < ETH_HLEN or size > PAGE_SIZE - NET_SKB_PAD - SKB_SHARED_INFO:
        raise TestRunError(f"packet of {size} bytes: need {ETH_HLEN} to 3712 bytes")
    skb_in = _ctx_in(ctx, SK_BUFF)
    image = bytearray(SK_BUFF.size)
    if skb_in is not None:
        allowed = bytearray(SK_BUFF.size)
        for name in _SKB_CTX_IN:
            f = SK_BUFF.field(name)
            allowed[f.offset : f.end] = skb_in[f.offset : f.end]
        if allowed != skb_in:
            raise TestRunError(f"__sk_buff ctx_in may set only {', '.join(_SKB_CTX_IN)}")
        if _get(skb_in, SK_BUFF, "ifindex") > LOOPBACK_IFINDEX:
            raise TestRunError("no network devices but loopback in pybpf", errno.ENODEV)
        image[:] = skb_in
    is_l2 = prog_type != ProgramType.SOCKET_FILTER
    length = size if is_l2 else size - ETH_HLEN
    wire_len = _get(image, SK_BUFF, "wire_len")
    if wire_len and (wire_len < length or wire_len > GSO_LEGACY_MAX_SIZE):
        raise TestRunError(f"wire_len {wire_len} is outside [{length}, {GSO_LEGACY_MAX_SIZE}]")
    if _get(image, SK_BUFF, "gso_segs") > GSO_MAX_SEGS:
        raise TestRunError("gso_segs is larger than GSO_MAX_SEGS")
    pkt_type, protocol = _eth_type_trans(data)
    _check_l3_header(data)
    _put(image, SK_BUFF, "len", length)
    _put(image, SK_BUFF, "pkt_type", pkt_type)
    _put(image, SK_BUFF, "protocol", protocol)
    _put(image, SK_BUFF, "ifindex", LOOPBACK_IFINDEX)
    _put(image, SK_BUFF, "wire_len", wire_len or length)
    packet = _Packet(memory, PAGE_SIZE, data, NET_SKB_PAD)
    first = NET_SKB_PAD + (0 if is_l2 else ETH_HLEN)
    start = packet.base + first
    end = packet.base + NET_SKB_PAD + size
    pointers = {"data": start, "data_meta": start, "data_end": end}
    # The buffer around the packet, for skb_change_head/tail.
    pointers["head"] = packet.base
    pointers["end"] = packet.base + PAGE_SIZE - SKB_SHARED_INFO
    packet.expose(first, NET_SKB_PAD + size)
    region = memory.allocate_context(bytes(image), "ctx", access, pointers)
    # The region's native-backed table: what helpers (native or not) moved.
    pointers = region.pointers
    try:
        retval, duration = _run(engine, region.start, repeat)
    finally:
        packet.release()
        memory.remove(region)
    if not is_l2:  # the kernel pushes the Ethernet header back as zeros
        ctypes.memset(packet.base + NET_SKB_PAD, 0, ETH_HLEN)
    # As the kernel: from skb->data, wherever helpers moved it (skb_change_head,
    # adjust_room, vlan_pop); a socket filter's from the zeroed Ethernet header.
    first = pointers["data"] if is_l2 else packet.base + NET_SKB_PAD
    data_out = packet.read(first, pointers["data_end"])
    ctx_out = None
    if skb_in is not None:
        after = region.read()
        for name in _SKB_CTX_OUT:
            f = SK_BUFF.field(name)
            skb_in[f.offset : f.end] = after[f.offset : f.end]
        ctx_out = bytes(skb_in)
    return TestRunResult(retval, data_out, ctx_out, duration)


def test_run(
    program: Any,
    prog_type: ProgramType | int,
    *,
    data: bytes,
    ctx: bytes | None = None,
    repeat: int = 1,
    memory: Memory | None = None,
    helpers: HelperTable | None = None,
) -> TestRunResult:
    """Run `program` on `data` as `bpf_prog_test_run_opts` would; see the module docstring.

    `program` is an engine (e.g. an `Interpreter`), a `ProgramSpec` or a
    sequence of instructions; in the last two cases an interpreter is built
    on `memory` with `helpers` and closed afterwards. `ctx_out` is None when
    no `ctx` was given (the kernel copies it out only then).
    """
    prog_type = ProgramType(prog_type)
    access = context_access(prog_type)
    if access is None:
        raise NotSupportedError(f"test runs of {prog_type.c_name} programs")
    engine, owned = _engine(program, memory, helpers)
    try:
        if prog_type == ProgramType.XDP:
            return _xdp(engine, access, bytes(data), ctx, repeat)
        return _skb(engine, access, prog_type, bytes(data), ctx, repeat)
    finally:
        if owned:
            engine.close()


test_run.__test__ = False  # type: ignore[attr-defined]  # a function, not a pytest test
