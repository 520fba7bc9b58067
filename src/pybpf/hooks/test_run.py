"""Test runs with the semantics of the kernel's `BPF_PROG_TEST_RUN` (net/bpf/test_run.c).

`test_run(program, prog_type, data=..., ctx=..., args=..., regs=..., repeat=N)`
builds the input the kernel would build for that program type, runs the
program `repeat` times on it and returns a `TestRunResult` with the fields
`bpf_prog_test_run_opts` fills in. Input the kernel refuses raises
`TestRunError` with its errno.

* xdp: the packet sits after `XDP_PACKET_HEADROOM` (256) bytes of headroom
  in a page; `ctx` (a `struct xdp_md`) may carry ingress_ifindex /
  rx_queue_index and must have data_meta = 0 and data_end = len(data); its
  `data` is the metadata length. A frame longer than the page holds (3520
  bytes without metadata) becomes a multi-buffer frame as in the kernel: the
  linear part plus up to 17 page-sized fragments (ENOMEM beyond), which
  `bpf_xdp_get_buff_len` counts and `bpf_xdp_load_bytes`/`store_bytes`
  reach, while `data_end` covers the linear part only. Linux 6.18 gives
  them to any XDP program in a test run, `xdp.frags` or not (checked
  against the kernel). `data_out` runs from data_meta to data_end, then
  the fragments.
* socket_filter, sched_cls, sched_act, cgroup_skb: a `struct __sk_buff`
  filled as `bpf_prog_test_run_skb` does after `eth_type_trans` on the
  loopback device (whose address, and broadcast address, are all zeros: a
  frame to 00:00:00:00:00:00 is PACKET_HOST, any other group address,
  ff:ff:ff:ff:ff:ff included, PACKET_MULTICAST, the rest PACKET_OTHERHOST).
  `ctx` may set only mark, priority, ingress_ifindex, ifindex, cb, tstamp,
  wire_len, gso_segs, gso_size and hwtstamp (EINVAL otherwise);
  `ctx_out` is `ctx` with mark, priority, ingress_ifindex, ifindex, tstamp,
  cb, wire_len, gso_segs and hwtstamp copied back (`convert_skb_to___skb`).
  tc_classid, tc_index, queue_mapping and gso_size are 16-bit members of
  the sk_buff: a program reads back only their low 16 bits. Only tc
  programs see the Ethernet header; the others start at the network header,
  and their `data_out` has the Ethernet header zeroed. A cgroup_skb program
  sees the test run's socket: family, and local/remote addresses taken from
  the IPv4/IPv6 header (ports 0).
* flow_dissector: the frame from its Ethernet header; the program fills a
  `struct bpf_flow_keys` (n_proto, nhoff = thoff = 14 and `flags` from
  `ctx`, which may set nothing else) and `data_out` is the 56 bytes of keys,
  nhoff/thoff clamped as `bpf_flow_dissect` does; `ctx_out` is `ctx`.
* sk_lookup: no data (EINVAL); `ctx` is a `struct bpf_sk_lookup` and is
  required (EINVAL), with sk = 0 and nothing after local_port (EINVAL),
  local_port ≤ 65535 (ERANGE), family AF_INET or AF_INET6 (EAFNOSUPPORT).
  `ctx_out` is `ctx` with cookie 0 (no socket can be selected here).
* raw_tracepoint: the u64 arguments (`args=[...]`, or `ctx` bytes), at most
  12 (EINVAL), no data and repeat ≤ 1 (EINVAL), and at least as many bytes
  as the program reads (`max_ctx_offset`, EINVAL).

and, which Linux cannot test-run (ENOTSUPP there), with a synthetic context:

* tracepoint: the event record as u64 words (`args=[...]`, the first word
  being the 8 bytes of common fields, which the program may not read) or
  `ctx` bytes, up to 8192 bytes.
* kprobe (and uprobe, the same program type): an x86-64 `struct pt_regs`
  from `regs={"di": 1, "si": 2, ...}` (kernel names, or rdi/rsi/rip/... as
  in assembly) over `ctx` bytes (168).
* perf_event: a `struct bpf_perf_event_data`: `ctx` bytes (184: the
  registers, sample_period, addr), with `regs` over the registers.
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
from ..platform.contexts import (
    BPF_FLOW_KEYS_SIZE,
    FLOW_DISSECTOR_SKB,
    MAX_BPF_FUNC_ARGS,
    PERF_EVENT_DATA,
    PERF_MAX_TRACE_SIZE,
    PT_REGS,
    PT_REGS_NAMES,
    SK_BUFF,
    SK_LOOKUP,
    XDP_MD,
    ContextAccess,
    StructLayout,
)
from ..platform.program_type_info import TestRunKind, program_type_info
from ..platform.program_types import ProgramType
from ..runtime.helpers import HelperTable
from ..runtime.memory import Memory
from ..runtime.packet_buffer import PacketBuffer
from .packets import (
    ETH_HLEN,
    LOOPBACK_IFINDEX,
    PAGE_SIZE,
    SKB_MAX_LINEAR,
    SkbPacket,
    XdpFrame,
    get_field,
    put_field,
    skb_metadata,
)

__all__ = [
    "TestRunError",
    "TestRunResult",
    "test_run",
]

U32_MAX = 0xFFFFFFFF
XDP_METADATA_MAX = 32
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535

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


_get, _put = get_field, put_field


def _run(engine: Any, ctx_addr: int, repeat: int) -> tuple[int, int]:
    # As bpf_test_run: the same context and packet for every repeat (a
    # program that moves the packet's bounds sees them moved on the next
    # run), r0 of the last run, the mean time per run.
    repeat = max(1, repeat)
    run_repeated = getattr(engine, "run_repeated", None)
    # First-use set-up (a run slot, a stack) is not part of `duration`.
    prepare = getattr(engine, "prepare_run", None)
    if prepare is not None:
        prepare()
    start = time.perf_counter_ns()
    if run_repeated is not None:  # the engine's own loop, set-up hoisted out of it
        r0 = run_repeated(ctx_addr, repeat)
    else:
        r0 = 0
        for _ in range(repeat):
            r0 = engine.run(ctx_addr)
    elapsed = time.perf_counter_ns() - start
    return r0 & _M32, max(1, elapsed // repeat)


def _xdp(engine: Any, access: ContextAccess, req: _Request):
    data, ctx, repeat = req.data, req.ctx, req.repeat
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
    frame = XdpFrame(memory, access, data, meta=meta, ingress_ifindex=ingress, rx_queue_index=queue)
    try:
        retval, duration = _run(engine, frame.ctx, repeat)
    finally:
        frame.release()
    data_out = frame.data_out()
    ctx_out = None
    if md is not None:
        data_off, end_off = frame.offsets()
        _put(md, XDP_MD, "data", data_off)
        _put(md, XDP_MD, "data_end", end_off)
        ctx_out = bytes(md)
    return TestRunResult(retval, data_out, ctx_out, duration)


# Fields of __sk_buff a ctx_in may set (convert___skb_to_skb); everything else must be zero.
_SKB_CTX_IN = ("mark", "priority", "ingress_ifindex", "ifindex", "cb", "tstamp", "wire_len")
_SKB_CTX_IN += ("gso_segs", "gso_size", "hwtstamp")
# Fields the kernel copies back into ctx_out (convert_skb_to___skb).
_SKB_CTX_OUT = ("mark", "priority", "ingress_ifindex", "ifindex", "tstamp", "cb", "wire_len")
_SKB_CTX_OUT += ("gso_segs", "hwtstamp")

_AF_INET, _AF_INET6 = 2, 10
_ETH_P_IP, _ETH_P_IPV6 = 0x0800, 0x86DD


_L3_HEADER_MIN = {_ETH_P_IP: 20, _ETH_P_IPV6: 40}
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


def _skb(engine: Any, access: ContextAccess, req: _Request):
    memory: Memory = engine.memory
    data, ctx, prog_type = req.data, req.ctx, req.prog_type
    size = len(data)
    if size < ETH_HLEN or size > SKB_MAX_LINEAR:
        raise TestRunError(f"packet of {size} bytes: need {ETH_HLEN} to {SKB_MAX_LINEAR} bytes")
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
        # skb_shinfo(skb)->gso_size is an unsigned short.
        _put(image, SK_BUFF, "gso_size", _get(skb_in, SK_BUFF, "gso_size") & 0xFFFF)
    is_l2 = program_type_info(prog_type).packet_at_l2
    length = size if is_l2 else size - ETH_HLEN
    wire_len = _get(image, SK_BUFF, "wire_len")
    if wire_len and (wire_len < length or wire_len > GSO_LEGACY_MAX_SIZE):
        raise TestRunError(f"wire_len {wire_len} is outside [{length}, {GSO_LEGACY_MAX_SIZE}]")
    if _get(image, SK_BUFF, "gso_segs") > GSO_MAX_SEGS:
        raise TestRunError("gso_segs is larger than GSO_MAX_SEGS")
    _check_l3_header(data)
    put_field(image, SK_BUFF, "wire_len", wire_len or length)
    skb_metadata(image, data, length=length, with_socket=prog_type == ProgramType.CGROUP_SKB)
    packet = SkbPacket(memory, access, data, bytes(image), at_l2=is_l2)
    try:
        retval, duration = _run(engine, packet.ctx, req.repeat)
    finally:
        packet.release()
    data_out = packet.data_out()
    ctx_out = None
    if skb_in is not None:
        after = packet.context_after()
        for name in _SKB_CTX_OUT:
            f = SK_BUFF.field(name)
            skb_in[f.offset : f.end] = after[f.offset : f.end]
        ctx_out = bytes(skb_in)
    return TestRunResult(retval, data_out, ctx_out, duration)


# -- flow dissector ---------------------------------------------------------------


def _flow_dissector(engine: Any, access: ContextAccess, req: _Request):
    memory: Memory = engine.memory
    data = req.data
    if len(data) < ETH_HLEN or len(data) > PAGE_SIZE:
        raise TestRunError(f"packet of {len(data)} bytes: need {ETH_HLEN} to {PAGE_SIZE} bytes")
    flags = 0
    user = None
    if req.ctx is not None:
        user = bytes(req.ctx[:BPF_FLOW_KEYS_SIZE].ljust(BPF_FLOW_KEYS_SIZE, b"\0"))
        if any(req.ctx[BPF_FLOW_KEYS_SIZE:]):
            raise TestRunError("ctx_in has non-zero bytes past struct bpf_flow_keys", errno.E2BIG)
        if any(user[:48]) or any(user[52:]):
            raise TestRunError("bpf_flow_keys ctx_in may set only flags")
        flags = int.from_bytes(user[48:52], "little")
    keys = (ctypes.c_ubyte * BPF_FLOW_KEYS_SIZE)()
    keys_region = memory.wrap(keys, "flow_keys")
    packet = PacketBuffer(memory, len(data), data, 0)
    packet.expose(0, len(data))
    pointers = {
        "data": packet.base,
        "data_end": packet.base + len(data),
        "flow_keys": ctypes.addressof(keys),
    }
    region = memory.allocate_context(bytes(FLOW_DISSECTOR_SKB.size), "ctx", access, pointers)
    retval, duration = 0, 1
    try:
        # bpf_flow_dissect's set-up before each run, its clamps after it.
        for _ in range(max(1, req.repeat)):
            ctypes.memset(keys, 0, BPF_FLOW_KEYS_SIZE)
            view = memoryview(keys).cast("B")
            view[10:12] = data[12:14]  # n_proto, network byte order
            view[0:2] = view[2:4] = ETH_HLEN.to_bytes(2, "little")  # nhoff, thoff
            view[48:52] = flags.to_bytes(4, "little")
            retval, duration = _run(engine, region.start, 1)
            nhoff = min(max(int.from_bytes(view[0:2], "little"), ETH_HLEN), len(data))
            thoff = min(max(int.from_bytes(view[2:4], "little"), nhoff), len(data))
            view[0:2] = nhoff.to_bytes(2, "little")
            view[2:4] = thoff.to_bytes(2, "little")
    finally:
        packet.release()
        memory.remove(region)
        memory.remove(keys_region)
    return TestRunResult(retval, bytes(keys), user, duration)


# -- sk_lookup ----------------------------------------------------------------------


def _sk_lookup(engine: Any, access: ContextAccess, req: _Request):
    if req.data:
        raise TestRunError("sk_lookup test runs take no packet")
    user = _ctx_in(req.ctx, SK_LOOKUP)
    if user is None:
        raise TestRunError("sk_lookup test runs need a struct bpf_sk_lookup ctx")
    if _get(user, SK_LOOKUP, "sk"):
        raise TestRunError("bpf_sk_lookup ctx_in: sk must be 0")
    if any(user[SK_LOOKUP.field("local_port").end :]):
        raise TestRunError("bpf_sk_lookup ctx_in: nothing may follow local_port")
    if _get(user, SK_LOOKUP, "local_port") > 0xFFFF:
        raise TestRunError("bpf_sk_lookup ctx_in: local_port above 65535", errno.ERANGE)
    family = _get(user, SK_LOOKUP, "family") & 0xFFFF
    if family not in (_AF_INET, _AF_INET6):
        raise TestRunError(f"bpf_sk_lookup ctx_in: family {family}", errno.EAFNOSUPPORT)
    # struct bpf_sk_lookup_kern: u16 family, protocol and ports; only the
    # family's addresses; no socket selected, no ingress device.
    image = bytearray(SK_LOOKUP.size)
    _put(image, SK_LOOKUP, "family", family)
    _put(image, SK_LOOKUP, "protocol", _get(user, SK_LOOKUP, "protocol") & 0xFFFF)
    image[36:38] = user[36:38]  # remote_port (__be16); the padding after it reads 0
    _put(image, SK_LOOKUP, "local_port", _get(user, SK_LOOKUP, "local_port"))
    names = ("remote_ip4", "local_ip4") if family == _AF_INET else ("remote_ip6", "local_ip6")
    for name in names:
        f = SK_LOOKUP.field(name)
        image[f.offset : f.end] = user[f.offset : f.end]
    region = engine.memory.allocate_context(bytes(image), "ctx", access, {})
    try:
        retval, duration = _run(engine, region.start, req.repeat)
    finally:
        engine.memory.remove(region)
    _put(user, SK_LOOKUP, "sk", 0)  # the cookie of the selected socket: none
    return TestRunResult(retval, b"", bytes(user), duration)


# -- tracing: raw_tracepoint (as the kernel), tracepoint, kprobe, perf_event ------


def _words(args: Iterable[int]) -> bytes:
    return b"".join((int(a) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") for a in args)


def _plain_context(
    engine: Any,
    access: ContextAccess,
    image: bytes,
    repeat: int,
    pointers: dict[str, int] | None = None,
):
    region = engine.memory.allocate_context(image, "ctx", access, pointers or {})
    try:
        retval, duration = _run(engine, region.start, repeat)
        after = region.read()
    finally:
        engine.memory.remove(region)
    return retval, after, duration


def _raw_tracepoint(engine: Any, access: ContextAccess, req: _Request):
    if req.data:
        raise TestRunError("raw_tracepoint test runs take no packet (data_in)")
    if req.repeat > 1:
        raise TestRunError("raw_tracepoint test runs do not repeat")
    image = _words(req.args) if req.args is not None else bytes(req.ctx or b"")
    if len(image) > MAX_BPF_FUNC_ARGS * 8:
        raise TestRunError(f"{len(image)} bytes of arguments: at most {MAX_BPF_FUNC_ARGS} u64")
    if req.max_ctx_offset is not None and len(image) < req.max_ctx_offset:
        raise TestRunError(
            f"the program reads {req.max_ctx_offset} bytes of arguments, the run gives {len(image)}"
        )
    retval, _, duration = _plain_context(engine, access, image, 1)
    return TestRunResult(retval, b"", None, duration)


def _tracepoint(engine: Any, access: ContextAccess, req: _Request):
    if req.data:
        raise TestRunError("tracepoint runs take no packet")
    image = _words(req.args) if req.args is not None else bytes(req.ctx or b"")
    if len(image) > PERF_MAX_TRACE_SIZE:
        raise TestRunError(f"a record of {len(image)} bytes: at most {PERF_MAX_TRACE_SIZE}")
    retval, _, duration = _plain_context(engine, access, image.ljust(8, b"\0"), req.repeat)
    return TestRunResult(retval, b"", None, duration)


_REG_ALIASES = {name: name for name in PT_REGS_NAMES}
_REG_ALIASES.update(
    {f"r{name}": name for name in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp", "ip")},
    orig_rax="orig_ax",
    eflags="flags",
)
"""pt_regs member names, and the assembly names (rdi, rip, …) for them."""


def _pt_regs(regs: dict[str, int] | None, base: bytes) -> bytearray:
    image = bytearray(base[: PT_REGS.size].ljust(PT_REGS.size, b"\0"))
    for name, value in (regs or {}).items():
        field = _REG_ALIASES.get(name.lower().removeprefix("%"))
        if field is None:
            raise TestRunError(
                f"no register {name!r} in x86-64 pt_regs ({', '.join(PT_REGS_NAMES)})"
            )
        _put(image, PT_REGS, field, int(value))
    return image


def _kprobe(engine: Any, access: ContextAccess, req: _Request):
    if req.data:
        raise TestRunError("kprobe runs take no packet")
    base = _ctx_in(req.ctx, PT_REGS) or bytes(PT_REGS.size)
    image = _pt_regs(req.regs, bytes(base))
    retval, _, duration = _plain_context(engine, access, bytes(image), req.repeat)
    return TestRunResult(retval, b"", None if req.ctx is None else bytes(image), duration)


def _perf_event(engine: Any, access: ContextAccess, req: _Request):
    if req.data:
        raise TestRunError("perf_event runs take no packet")
    base = _ctx_in(req.ctx, PERF_EVENT_DATA) or bytearray(PERF_EVENT_DATA.size)
    image = _pt_regs(req.regs, bytes(base)) + base[PT_REGS.size :]
    retval, _, duration = _plain_context(engine, access, bytes(image), req.repeat)
    return TestRunResult(retval, b"", None if req.ctx is None else bytes(image), duration)


def _context_only(engine: Any, access: ContextAccess, req: _Request):
    """A context from ctx_in and, if the context has a data range (bind_md's app id, the
    sample's data, an extension's), the data between its pointers (eBPF for Windows'
    hooks, extension program types)."""
    layout = access.layout
    image = _ctx_in(req.ctx, layout) or bytearray(layout.size)
    ranged = "data" in layout.pointers
    if req.data and not ranged:
        raise TestRunError(f"struct {layout.name} has no data range: give ctx_in only")
    data = engine.memory.allocate_from(req.data or b"", "data") if ranged else None
    pointers: dict[str, int] = {}
    if data is not None:
        pointers = {"data": data.start, "data_end": data.start + len(req.data)}
        if "data_meta" in layout.pointers:
            pointers["data_meta"] = data.start
    try:
        retval, ctx_out, duration = _plain_context(
            engine, access, bytes(image), req.repeat, pointers
        )
        data_out = data.read() if data is not None else b""
    finally:
        if data is not None:
            engine.memory.remove(data)
    return TestRunResult(retval, data_out, None if req.ctx is None else ctx_out, duration)


def _windows_xdp(engine: Any, access: ContextAccess, req: _Request):
    """eBPF for Windows' XDP: the frame in a page after the usual headroom (so that
    bpf_xdp_adjust_head can grow it), its xdp_md from ctx_in (ingress_ifindex)."""
    image = _ctx_in(req.ctx, access.layout) or bytearray(access.layout.size)
    ifindex = get_field(bytes(image), access.layout, "ingress_ifindex") or LOOPBACK_IFINDEX
    frame = XdpFrame(engine.memory, access, req.data, ingress_ifindex=ifindex)
    try:
        retval, duration = _run(engine, frame.ctx, req.repeat)
        ctx_out = frame.region.read()
    finally:
        frame.release()
    p = frame.pointers
    data_out = frame.data_out()[p["data"] - p["data_meta"] :]
    return TestRunResult(retval, data_out, None if req.ctx is None else ctx_out, duration)


@dataclass(frozen=True, slots=True)
class _Request:
    """What one test run was given."""

    prog_type: ProgramType
    data: bytes
    ctx: bytes | None
    repeat: int
    args: tuple[int, ...] | None = None
    regs: dict[str, int] | None = None
    max_ctx_offset: int | None = None


#: The context each kind of test run builds (the program type's record names the kind).
_RUNNERS = {
    TestRunKind.XDP: _xdp,
    TestRunKind.SKB: _skb,
    TestRunKind.FLOW_DISSECTOR: _flow_dissector,
    TestRunKind.SK_LOOKUP: _sk_lookup,
    TestRunKind.RAW_TRACEPOINT: _raw_tracepoint,
    TestRunKind.TRACEPOINT: _tracepoint,
    TestRunKind.KPROBE: _kprobe,
    TestRunKind.PERF_EVENT: _perf_event,
    TestRunKind.CONTEXT: _context_only,
    TestRunKind.WINDOWS_XDP: _windows_xdp,
}
_TAKES_ARGS = (TestRunKind.RAW_TRACEPOINT, TestRunKind.TRACEPOINT)
_TAKES_REGS = (TestRunKind.KPROBE, TestRunKind.PERF_EVENT)


def max_ctx_offset(instructions: Iterable[Instruction], report: Any) -> int | None:
    """How far into its context a verified program reads (the kernel's `max_ctx_offset`).

    From the verifier's facts (`Report.context_accesses`: pc → offset); None without them.
    """
    accesses = getattr(report, "context_accesses", None)
    if accesses is None:
        return None
    from ..isa.instruction import with_pcs
    from ..isa.opcodes import SIZE_BYTES, Size

    by_pc = dict(with_pcs(instructions))
    reach = 0
    for pc, offset in accesses.items():
        insn = by_pc.get(pc)
        if insn is not None:
            reach = max(reach, offset + SIZE_BYTES[Size(insn.opcode & 0x18)])
    return reach


def test_run(
    program: Any,
    prog_type: ProgramType | int,
    *,
    data: bytes = b"",
    ctx: bytes | None = None,
    repeat: int = 1,
    args: Iterable[int] | None = None,
    regs: dict[str, int] | None = None,
    max_ctx_offset: int | None = None,
    memory: Memory | None = None,
    helpers: HelperTable | None = None,
) -> TestRunResult:
    """Run `program` as `bpf_prog_test_run_opts` would; see the module docstring.

    `program` is an engine (e.g. an `Interpreter`), a `ProgramSpec` or a
    sequence of instructions; in the last two cases an interpreter is built
    on `memory` with `helpers` and closed afterwards. `args` (u64 values)
    are the arguments of a raw tracepoint or the words of a tracepoint
    record, `regs` (register name → value) the registers of a kprobe or
    perf_event; `max_ctx_offset` how far the program reads its context (raw
    tracepoints need that many bytes). `ctx_out` is None when no `ctx` was
    given (the kernel copies it out only then), or for types without one.
    """
    prog_type = ProgramType(prog_type)
    info = program_type_info(prog_type)
    access, kind = info.context, info.test_run
    if access is None or kind is None:
        raise NotSupportedError(f"test runs of {prog_type.c_name} programs")
    runner = _RUNNERS[kind]
    if args is not None and kind not in _TAKES_ARGS:
        raise TestRunError(
            f"{prog_type.c_name} test runs take no args (raw_tracepoint, tracepoint do)"
        )
    if regs is not None and kind not in _TAKES_REGS:
        raise TestRunError(f"{prog_type.c_name} test runs take no regs (kprobe, perf_event do)")
    if args is not None and ctx is not None:
        raise TestRunError("give args or ctx, not both")
    if not 0 <= repeat <= U32_MAX:
        # bpf_attr.test.repeat is a __u32: no larger count reaches the kernel.
        raise TestRunError(f"repeat {repeat} is outside the kernel's u32 range (0..{U32_MAX})")
    req = _Request(
        prog_type,
        bytes(data),
        None if ctx is None else bytes(ctx),
        repeat,
        None if args is None else tuple(args),
        None if regs is None else dict(regs),
        max_ctx_offset,
    )
    engine, owned = _engine(program, memory, helpers)
    try:
        return runner(engine, access, req)
    finally:
        if owned:
            engine.close()


test_run.__test__ = False  # type: ignore[attr-defined]  # a function, not a pytest test
