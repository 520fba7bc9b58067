"""Native packet helpers for JIT-compiled programs: xdp_adjust_*, csum_diff, l3/l4_csum_replace,
skb_load_bytes and skb_store_bytes.

Each helper is one internal function of the program's module,
``i64 (i64 pointers, i64 r1, .., i64 r5)``, written after its Python
twin in `runtime.linux_helpers.packet` (same checks in the same order,
same results). `pointers` is `run->ctx_pointers`: the context region's
native pointer array (`runtime.memory.PointerTable`), whose slots are
fixed per layout: data, data_end, data_meta, then hard_start, hard_end
(the XDP frame) and head, end (an skb's buffer). A slot never set reads 0,
which is how the XDP helpers tell an XDP frame from any other context
(the Python helpers' -ENOTSUPP). A run without a context region
(`ctx_pointers == 0`) calls the Python helper, which raises the fault.

The packet helpers move the pointers in the array only; the Python
region table's `packet` region is not edited from native code (see
`linux_helpers.packet.sync_packet_region` for Python code that needs it
in step during the same run).
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from llvmlite import ir

from ...platform.contexts import SK_BUFF, XDP_MD
from ...platform.helper_ids import HelperId
from ...runtime.linux_helpers.packet import (
    BPF_F_HDR_FIELD_MASK,
    BPF_F_INVALIDATE_HASH,
    BPF_F_MARK_ENFORCE,
    BPF_F_MARK_MANGLED_0,
    BPF_F_PSEUDO_HDR,
    BPF_F_RECOMPUTE_CSUM,
    CSUM_MANGLED_0,
    ENOTSUPP,
    ETH_HLEN,
    XDP_FRAME_SIZE,
    XDP_METADATA_MAX,
)
from ...runtime.memory import pointer_slot
from ...runtime.native.irblocks import (
    I1,
    I8,
    I32,
    I64,
    PTR,
    branch,
    define,
    i64,
    pointer,
    return_if,
    store,
)
from ...runtime.native.irblocks import (
    errno as neg_errno,
)
from .native_site import native_or_fallback, run_field

_M16 = 0xFFFF
_M32 = 0xFFFFFFFF
I16 = ir.IntType(16)

Build = Callable[[ir.IRBuilder, ir.Function], None]


def _slot(b: ir.IRBuilder, pointers: ir.Value, layout: object, name: str) -> ir.Value:
    """The address of pointer slot `name` in the array at `pointers`."""
    return b.add(pointers, i64(8 * pointer_slot(layout, name)))


def _get(b: ir.IRBuilder, pointers: ir.Value, layout: object, name: str) -> ir.Value:
    return b.load(pointer(b, _slot(b, pointers, layout, name)), typ=I64)


def _put(b: ir.IRBuilder, pointers: ir.Value, layout: object, name: str, value: ir.Value) -> None:
    store(b, value, _slot(b, pointers, layout, name))


def _signed32(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return b.sext(b.trunc(value, I32), I64)


def _function(module: ir.Module, name: str, build: Build) -> ir.Function:
    """The internal helper function `name` of `module`, built on first use."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing  # type: ignore[return-value]
    function, b = define(module, name, I64, [I64] * 6, internal=True)
    build(b, function)
    return function


def _xdp_frame(b: ir.IRBuilder, pointers: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(hard_start, hard_end); returns -ENOTSUPP when the context has no XDP frame."""
    start = _get(b, pointers, XDP_MD, "hard_start")
    end = _get(b, pointers, XDP_MD, "hard_end")
    absent = b.or_(b.icmp_unsigned("==", start, i64(0)), b.icmp_unsigned("==", end, i64(0)))
    return_if(b, absent, neg_errno(ENOTSUPP), "noframe")
    return start, end


def _build_adjust_head(b: ir.IRBuilder, function: ir.Function) -> None:
    pointers, _, r2 = function.args[:3]
    hard_start, _ = _xdp_frame(b, pointers)
    offset = _signed32(b, r2)
    data = _get(b, pointers, XDP_MD, "data")
    meta = _get(b, pointers, XDP_MD, "data_meta")
    data_end = _get(b, pointers, XDP_MD, "data_end")
    metalen = b.sub(data, meta)
    moved = b.add(data, offset)
    low = b.add(b.add(hard_start, i64(XDP_FRAME_SIZE)), metalen)
    bad = b.or_(
        b.icmp_signed("<", moved, low), b.icmp_signed(">", moved, b.sub(data_end, i64(ETH_HLEN)))
    )
    return_if(b, bad, neg_errno(errno.EINVAL), "bounds")
    memmove = b.module.declare_intrinsic("llvm.memmove", [ir.PointerType()] * 2 + [I64])
    new_meta = b.add(meta, offset)
    b.call(
        memmove, [pointer(b, new_meta), pointer(b, meta), metalen, ir.Constant(ir.IntType(1), 0)]
    )
    _put(b, pointers, XDP_MD, "data_meta", new_meta)
    _put(b, pointers, XDP_MD, "data", moved)
    b.ret(i64(0))


def _build_adjust_tail(b: ir.IRBuilder, function: ir.Function) -> None:
    pointers, _, r2 = function.args[:3]
    _, hard_end = _xdp_frame(b, pointers)
    offset = _signed32(b, r2)
    data = _get(b, pointers, XDP_MD, "data")
    data_end = _get(b, pointers, XDP_MD, "data_end")
    moved = b.add(data_end, offset)
    bad = b.or_(
        b.icmp_signed(">", moved, hard_end),
        b.icmp_signed("<", moved, b.add(data, i64(ETH_HLEN))),
    )
    return_if(b, bad, neg_errno(errno.EINVAL), "bounds")
    grow, same = branch(b, b.icmp_signed(">", offset, i64(0)), "grow")
    b.position_at_end(grow)
    memset = b.module.declare_intrinsic("llvm.memset", [ir.PointerType(), I64])
    b.call(
        memset, [pointer(b, data_end), ir.Constant(I8, 0), offset, ir.Constant(ir.IntType(1), 0)]
    )
    b.branch(same)
    b.position_at_end(same)
    _put(b, pointers, XDP_MD, "data_end", moved)
    b.ret(i64(0))


def _build_adjust_meta(b: ir.IRBuilder, function: ir.Function) -> None:
    pointers, _, r2 = function.args[:3]
    hard_start, _ = _xdp_frame(b, pointers)
    data = _get(b, pointers, XDP_MD, "data")
    meta = b.add(_get(b, pointers, XDP_MD, "data_meta"), _signed32(b, r2))
    metalen = b.sub(data, meta)
    bad = b.or_(
        b.icmp_signed("<", meta, b.add(hard_start, i64(XDP_FRAME_SIZE))),
        b.icmp_signed(">", meta, data),
    )
    return_if(b, bad, neg_errno(errno.EINVAL), "bounds")
    misfit = b.or_(
        b.icmp_unsigned("!=", b.and_(metalen, i64(3)), i64(0)),
        b.icmp_signed(">", metalen, i64(XDP_METADATA_MAX)),
    )
    return_if(b, misfit, neg_errno(errno.EACCES), "metalen")
    _put(b, pointers, XDP_MD, "data_meta", meta)
    b.ret(i64(0))


def _fold16(b: ir.IRBuilder, total: ir.Value) -> ir.Value:
    # Four rounds of end-around carry: enough for any sum below 2**40,
    # after which each round is the identity (the Python loop's result).
    for _ in range(4):
        total = b.add(b.and_(total, i64(_M16)), b.lshr(total, i64(16)))
    return total


def _csum_diff_of(
    b: ir.IRBuilder, function: ir.Function, size: ir.Value, old: ir.Value, new: ir.Value
) -> ir.Value:
    """The 32-bit sum turning `old` into `new` for a size of 2 or 4; -EINVAL otherwise."""
    bad = b.and_(b.icmp_unsigned("!=", size, i64(2)), b.icmp_unsigned("!=", size, i64(4)))
    return_if(b, bad, neg_errno(errno.EINVAL), "size")
    two = b.add(b.and_(b.xor(old, i64(-1)), i64(_M16)), b.and_(new, i64(_M16)))
    old32, new32 = b.and_(old, i64(_M32)), b.and_(new, i64(_M32))
    four = b.add(
        b.add(
            b.and_(b.xor(old32, i64(-1)), i64(_M16)),
            b.and_(b.xor(b.lshr(old32, i64(16)), i64(-1)), i64(_M16)),
        ),
        b.add(b.and_(new32, i64(_M16)), b.lshr(new32, i64(16))),
    )
    return b.select(b.icmp_unsigned("==", size, i64(2)), two, four)


def _diff(b: ir.IRBuilder, function: ir.Function, flags: ir.Value, old: ir.Value, new: ir.Value):
    """The checksum difference of a replace: `new` itself for size 0 (then `old` must be 0)."""
    size = b.and_(flags, i64(BPF_F_HDR_FIELD_MASK))
    sized, raw = branch(b, b.icmp_unsigned("!=", size, i64(0)), "sized")
    done = function.append_basic_block("diff.done")
    b.position_at_end(raw)
    return_if(b, b.icmp_unsigned("!=", old, i64(0)), neg_errno(errno.EINVAL), "old")
    raw_diff, raw_end = b.and_(new, i64(_M32)), b.block
    b.branch(done)
    b.position_at_end(sized)
    sized_diff = _csum_diff_of(b, function, size, old, new)
    sized_end = b.block
    b.branch(done)
    b.position_at_end(done)
    diff = b.phi(I64)
    diff.add_incoming(raw_diff, raw_end)
    diff.add_incoming(sized_diff, sized_end)
    return diff


def _field_address(b: ir.IRBuilder, pointers: ir.Value, r2: ir.Value) -> ir.Value:
    """skb->data + offset of a 2-byte checksum field; returns -EFAULT when outside."""
    offset = b.and_(r2, i64(_M32))
    bad = b.or_(
        b.icmp_unsigned(">", offset, i64(0xFFFF)),
        b.icmp_unsigned("!=", b.and_(offset, i64(1)), i64(0)),
    )
    return_if(b, bad, neg_errno(errno.EFAULT), "offset")
    address = b.add(_get(b, pointers, SK_BUFF, "data"), offset)
    past = b.icmp_signed(">", b.add(address, i64(2)), _get(b, pointers, SK_BUFF, "data_end"))
    return_if(b, past, neg_errno(errno.EFAULT), "outside")
    return address


def _replace(b: ir.IRBuilder, address: ir.Value, diff: ir.Value) -> None:
    """csum_replace_by_diff on the 16-bit checksum at `address`."""
    word = b.zext(b.load(pointer(b, address), typ=I16), I64)
    total = _fold16(b, b.add(b.and_(b.xor(word, i64(-1)), i64(_M16)), _fold16(b, diff)))
    store(b, b.trunc(b.xor(total, i64(-1)), I16), address)


def _build_l3(b: ir.IRBuilder, function: ir.Function) -> None:
    pointers, _, r2, r3, r4, r5 = function.args
    bad_flags = b.icmp_unsigned("!=", b.and_(r5, i64(~BPF_F_HDR_FIELD_MASK)), i64(0))
    return_if(b, bad_flags, neg_errno(errno.EINVAL), "flags")
    address = _field_address(b, pointers, r2)
    _replace(b, address, _diff(b, function, r5, r3, r4))
    b.ret(i64(0))


def _build_l4(b: ir.IRBuilder, function: ir.Function) -> None:
    pointers, _, r2, r3, r4, r5 = function.args
    allowed = BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK
    bad_flags = b.icmp_unsigned("!=", b.and_(r5, i64(~allowed)), i64(0))
    return_if(b, bad_flags, neg_errno(errno.EINVAL), "flags")
    address = _field_address(b, pointers, r2)
    mangled = b.icmp_unsigned("!=", b.and_(r5, i64(BPF_F_MARK_MANGLED_0)), i64(0))
    loose = b.icmp_unsigned("==", b.and_(r5, i64(BPF_F_MARK_ENFORCE)), i64(0))
    zero = b.icmp_unsigned("==", b.load(pointer(b, address), typ=I16), ir.Constant(I16, 0))
    # A UDP packet without checksum stays without.
    return_if(b, b.and_(b.and_(mangled, loose), zero), i64(0), "nocsum")
    _replace(b, address, _diff(b, function, r5, r3, r4))
    now_zero = b.icmp_unsigned("==", b.load(pointer(b, address), typ=I16), ir.Constant(I16, 0))
    fix, done = branch(b, b.and_(mangled, now_zero), "mangled")
    b.position_at_end(fix)
    store(b, ir.Constant(I16, CSUM_MANGLED_0), address)
    b.branch(done)
    b.position_at_end(done)
    b.ret(i64(0))


def _build_csum_diff(b: ir.IRBuilder, function: ir.Function) -> None:
    _, r1, r2, r3, r4, r5 = function.args
    total = b.alloca(I64)  # first, in the entry block: promoted to a register
    from_size, to_size = b.and_(r2, i64(_M32)), b.and_(r4, i64(_M32))
    misaligned = b.icmp_unsigned("!=", b.and_(b.or_(from_size, to_size), i64(3)), i64(0))
    too_big = b.icmp_unsigned(">", b.add(from_size, to_size), i64(512))
    return_if(b, b.or_(misaligned, too_big), neg_errno(errno.EINVAL), "sizes")
    b.store(b.and_(r5, i64(_M32)), total)
    for base, size, invert in ((r1, from_size, True), (r3, to_size, False)):
        cond = function.append_basic_block("words.cond")
        body = function.append_basic_block("words.body")
        done = function.append_basic_block("words.done")
        entry = b.block
        b.branch(cond)
        b.position_at_end(cond)
        index = b.phi(I64)
        index.add_incoming(i64(0), entry)
        b.cbranch(b.icmp_unsigned("<", index, size), body, done)
        b.position_at_end(body)
        word = b.load(pointer(b, b.add(base, index)), typ=I32, align=1)
        if invert:
            word = b.xor(word, ir.Constant(I32, -1))
        b.store(b.add(b.load(total), b.zext(word, I64)), total)
        index.add_incoming(b.add(index, i64(4)), b.block)
        b.branch(cond)
        b.position_at_end(done)
    value = b.load(total)
    folded = b.add(b.urem(b.sub(value, i64(1)), i64(_M32)), i64(1))
    b.ret(b.select(b.icmp_unsigned("==", value, i64(0)), i64(0), folded))


def _get_slot(b: ir.IRBuilder, pointers: ir.Value, slot: int, valid: ir.Value) -> ir.Value:
    """The word in slot `slot` of the pointer array, 0 when `valid` is false (no array)."""
    name = "pybpf.jit.zero_words"
    zeros = b.module.globals.get(name)
    if zeros is None:
        kind = ir.ArrayType(I64, 16)
        zeros = ir.GlobalVariable(b.module, kind, name)
        zeros.initializer = ir.Constant(kind, [0] * 16)
        zeros.global_constant = True
        zeros.linkage = "internal"
    safe = b.select(valid, pointers, b.ptrtoint(zeros, I64))
    return b.load(pointer(b, b.add(safe, i64(8 * slot))), typ=I64)


def _emitter(
    name: str, build: Build, helper_id: int, needs_context: bool = True, linear: bool = False
):
    def emit(site: object) -> ir.Value:
        b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
        function = _function(site.module, f"pybpf.jit.{name}", build)  # type: ignore[attr-defined]
        args = list(site.args)  # type: ignore[attr-defined]
        if not needs_context:
            return b.call(function, [i64(0), *args])
        # Without a context region (bare bytecode) the Python helper decides.
        pointers = run_field(site, "ctx_pointers")
        has_context = b.icmp_unsigned("!=", pointers, i64(0))
        if linear:
            # A multi-buffer XDP frame (nr_frags != 0) goes to the Python helper.
            frags = _get_slot(b, pointers, pointer_slot(XDP_MD, "nr_frags"), has_context)
            has_context = b.and_(has_context, b.icmp_unsigned("==", frags, i64(0)))
        return native_or_fallback(
            site, has_context, lambda: b.call(function, [pointers, *args]), helper_id, name
        )

    emit.__name__ = f"emit_{name}"
    emit.__doc__ = f"Native `bpf_{name}` (see the module docstring)."
    return emit


def _skb_bytes(b: ir.IRBuilder, pointers: ir.Value, offset: ir.Value, size: ir.Value) -> ir.Value:
    """i1: [data + offset, + size) lies inside the packet (skb->data to data_end)."""
    data = _get(b, pointers, SK_BUFF, "data")
    end = _get(b, pointers, SK_BUFF, "data_end")
    return b.icmp_unsigned("<=", b.add(b.add(data, offset), size), end)


def _build_skb_load_bytes(b: ir.IRBuilder, function: ir.Function) -> None:
    # As linux_helpers.packet.skb_load_bytes: r4 bytes at offset r2 of skb->data to r3;
    # -EFAULT with r3 zeroed when the offset is past 0xffff or the bytes past the packet.
    pointers, _, r2, r3, r4, _ = function.args
    offset, size = b.and_(r2, i64(_M32)), b.and_(r4, i64(_M32))
    inside = b.and_(
        b.icmp_unsigned("<=", offset, i64(0xFFFF)), _skb_bytes(b, pointers, offset, size)
    )
    copy, fail = function.append_basic_block("copy"), function.append_basic_block("fail")
    b.cbranch(inside, copy, fail)
    b.position_at_end(fail)
    _mem(b, "llvm.memset", [pointer(b, r3), ir.Constant(I8, 0), size])
    b.ret(neg_errno(errno.EFAULT))
    b.position_at_end(copy)
    source = b.add(_get(b, pointers, SK_BUFF, "data"), offset)
    _mem(b, "llvm.memmove", [pointer(b, r3), pointer(b, source), size])
    b.ret(i64(0))


def _build_skb_store_bytes(b: ir.IRBuilder, function: ir.Function) -> None:
    # As linux_helpers.packet.skb_store_bytes: r4 bytes from r3 to offset r2 of skb->data;
    # -EINVAL for unknown flags, -EFAULT past the packet.
    pointers, _, r2, r3, r4, r5 = function.args
    allowed = BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH
    bad_flags = b.icmp_unsigned("!=", b.and_(r5, i64(~allowed & (1 << 64) - 1)), i64(0))
    return_if(b, bad_flags, neg_errno(errno.EINVAL), "flags")
    offset, size = b.and_(r2, i64(_M32)), b.and_(r4, i64(_M32))
    outside = b.or_(
        b.icmp_unsigned(">", offset, i64(0x7FFFFFFF)),
        b.not_(_skb_bytes(b, pointers, offset, size)),
    )
    return_if(b, outside, neg_errno(errno.EFAULT), "outside")
    target = b.add(_get(b, pointers, SK_BUFF, "data"), offset)
    _mem(b, "llvm.memmove", [pointer(b, target), pointer(b, r3), size])
    b.ret(i64(0))


def _mem(b: ir.IRBuilder, intrinsic: str, args: list[ir.Value]) -> None:
    """llvm.memset / llvm.memmove with a non-volatile flag."""
    second = I8 if intrinsic == "llvm.memset" else PTR
    function = b.module.declare_intrinsic(
        intrinsic, [PTR, I64] if second is I8 else [PTR, PTR, I64]
    )
    b.call(function, [*args, ir.Constant(I1, 0)])


EMITTERS = {
    HelperId.XDP_ADJUST_HEAD: _emitter(
        "xdp_adjust_head", _build_adjust_head, HelperId.XDP_ADJUST_HEAD
    ),
    HelperId.XDP_ADJUST_TAIL: _emitter(
        "xdp_adjust_tail", _build_adjust_tail, HelperId.XDP_ADJUST_TAIL, linear=True
    ),
    HelperId.XDP_ADJUST_META: _emitter(
        "xdp_adjust_meta", _build_adjust_meta, HelperId.XDP_ADJUST_META
    ),
    HelperId.L3_CSUM_REPLACE: _emitter("l3_csum_replace", _build_l3, HelperId.L3_CSUM_REPLACE),
    HelperId.L4_CSUM_REPLACE: _emitter("l4_csum_replace", _build_l4, HelperId.L4_CSUM_REPLACE),
    HelperId.CSUM_DIFF: _emitter("csum_diff", _build_csum_diff, HelperId.CSUM_DIFF, False),
    HelperId.SKB_LOAD_BYTES: _emitter(
        "skb_load_bytes", _build_skb_load_bytes, HelperId.SKB_LOAD_BYTES
    ),
    HelperId.SKB_STORE_BYTES: _emitter(
        "skb_store_bytes", _build_skb_store_bytes, HelperId.SKB_STORE_BYTES
    ),
}
"""Helper id → emitter, for `helpers_ir` to register."""
