"""Transfer functions: the effect of each IR instruction on an abstract `State`.

Numbers carry two views, `svalue` (signed) and `uvalue` (unsigned). As in
PREVAIL's `ebpf_transformer.cpp`, an operation computes one view (linear
operations relationally in the zone), copies it to the other, and then
*wraps* both to the operation's width: a view whose range crosses the
wrap point of its type is forgotten (`overflow_bounds`). 32-bit operations
end by zero-extending the low half.

Memory goes through `memory.py`; conditions through `assume.py`.
"""

from __future__ import annotations

from .assume import assume
from .domains.interval import S64_MAX, U64_MAX, Interval
from .domains.stack import STACK_LO, SUBPROGRAM_STACK_SIZE
from .frozen_maps import tag_map
from .global_functions import ArgKind as GlobalArgKind
from .global_functions import GlobalSignature
from .ir import (
    Assume,
    Atomic,
    Bin,
    BinOp,
    Call,
    CallbackEntry,
    CallbackReturn,
    CallLocal,
    Callx,
    Exit,
    Imm,
    IncrementLoopCounter,
    IrInstruction,
    Jmp,
    LoadMapAddress,
    LoadMapFd,
    LoadPseudo,
    Mem,
    Packet,
    Reg,
    ResetLoopCounter,
    Un,
    UnOp,
)
from .memory import (
    PTR_MAX,
    atomic,
    call_builtin,
    call_helper,
    forget_stack,
    load,
    release_null_references,
    store,
    write_stack_numbers,
)
from .options import AnalysisOptions
from .state import State, overflow_bounds, reg_owner, var

U32_MAX = (1 << 32) - 1
PROG_ARRAY = 3  # BPF_MAP_TYPE_PROG_ARRAY: its fd is a `map_fd_programs`
CODE_ADDR = 4  # lddw src=BPF_PSEUDO_FUNC


def transfer(state: State, insn: IrInstruction, opts: AnalysisOptions) -> None:
    """Apply `insn` to `state` in place."""
    if state.is_bottom():
        return
    match insn:
        case Bin():
            _bin(state, insn)
        case Un():
            _un(state, insn, opts)
        case Assume():
            assume(state, insn.cond)
            if opts.linux_rules:
                release_null_references(state)
        case Mem():
            if insn.is_load:
                load(state, insn, opts)
            else:
                store(state, insn, opts)
        case Atomic():
            atomic(state, insn)
        case Call():
            if insn.builtin:
                call_builtin(state, insn)
            else:
                call_helper(state, insn, opts)
        case Callx():
            func = state.eval(var(reg_owner(insn.func.v), "uvalue")).singleton()
            call_helper(state, Call(func) if func is not None else None, opts)
        case Packet():
            state.assign_number(reg_owner(0), Interval.top(), Interval.top())
            for r in range(1, 6):
                state.havoc_owner(reg_owner(r))
        case LoadMapFd():
            owner = reg_owner(insn.dst.v)
            state.havoc_owner(owner)
            programs = opts.map(insn.mapfd).type == PROG_ARRAY
            state.set_type(owner, {"map_fd_programs" if programs else "map_fd"})
            state.zone.set(var(owner, "map_fd"), Interval.const(insn.mapfd))
            state.zone.set(var(owner, "uvalue"), Interval(1, PTR_MAX))
        case LoadMapAddress():
            owner = reg_owner(insn.dst.v)
            state.havoc_owner(owner)
            state.set_type(owner, {"shared"})
            state.zone.set(var(owner, "shared_offset"), Interval.const(insn.offset))
            size = opts.map(insn.mapfd).value_size
            state.zone.set(var(owner, "shared_region_size"), Interval.const(size))
            state.zone.set(var(owner, "uvalue"), Interval(1, PTR_MAX))
            tag_map(state, owner, insn.mapfd, opts)  # read-only maps (frozen_maps.py)
        case IncrementLoopCounter():
            counter = f"pc[{insn.name}]"
            state.zone.assign(counter, counter, 1)
        case ResetLoopCounter():
            state.zone.set(f"pc[{insn.name}]", Interval.const(0))
        case LoadPseudo():
            owner = reg_owner(insn.dst.v)
            state.havoc_owner(owner)
            if insn.kind == CODE_ADDR:
                # A callback's address (PREVAIL: type func, uvalue the immediate).
                state.set_type(owner, {"func"})
                state.zone.set(var(owner, "uvalue"), Interval.const(insn.imm & U64_MAX))
        case CallLocal():
            _call_local(state, insn, opts)
        case CallbackEntry():
            _callback_entry(state, insn, opts)
        case CallbackReturn():
            for r in range(1, 6):
                saved = f"{insn.frame}/r{r}"
                state.copy_owner(reg_owner(r), saved)
                state.havoc_owner(saved)
        case Exit():
            if insn.frame:
                _return(state, insn.frame)
            if insn.signature is not None:
                _leave_global(state, insn.frame, insn.signature.changes_packet)
        case Jmp():
            pass


# ---------------------------------------------------------------- wrapping


def eval_width(state: State, name: str, width: int) -> Interval:
    """The variable's bounds seen at `width` bits (zero-extended for uvalues)."""
    iv = state.eval(name)
    if name.endswith(".uvalue"):
        return iv if width == 64 and iv.within(0, U64_MAX) else iv.truncate_unsigned(width)
    if width == 64 and iv.within(-(1 << 63), S64_MAX):
        return iv
    return iv.truncate_signed(width)


def _s64(v: int) -> int:
    v &= U64_MAX
    return v - (1 << 64) if v >> 63 else v


def _wrap_both(state: State, s: str, u: str, width: int) -> None:
    overflow_bounds(state, s, width, True)
    overflow_bounds(state, u, width, False)


def _signed_result(state: State, owner: str, value: Interval | None, width: int) -> None:
    """svalue := value (None: already assigned), uvalue := svalue, then wrap."""
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    if value is not None:
        state.zone.set(s, value)
    state.zone.assign(u, s)
    _wrap_both(state, s, u, width)


def _unsigned_result(state: State, owner: str, value: Interval | None, width: int) -> None:
    """uvalue := value (None: already assigned), svalue := uvalue, then wrap."""
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    if value is not None:
        state.zone.set(u, value)
    state.zone.assign(s, u)
    _wrap_both(state, s, u, width)


def _mask32(state: State, owner: str) -> None:
    """Zero-extend the low 32 bits (keeping relations when nothing changes)."""
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    si, ui = state.eval(s), state.eval(u)
    if si.within(0, U32_MAX) and ui.within(0, U32_MAX) and si == ui:
        if state.zone.diff(s, u) == Interval.const(0):
            return
    _unsigned_result(state, owner, ui.truncate_unsigned(32), 64)


# ---------------------------------------------------------------- ALU


def _is_number(state: State, owner: str) -> bool:
    return state.types_of(owner) == {"number"}


def _pointer_type(state: State, owner: str) -> str | None:
    ts = state.types_of(owner)
    if len(ts) == 1:
        (t,) = ts
        if t in ("ctx", "packet", "stack", "shared", "socket", "alloc_mem"):
            return t
    return None


def _pointer_types(state: State, owner: str) -> frozenset[str] | None:
    """The owner's types when it is surely a pointer (of one or several regions)."""
    ts = state.types_of(owner)
    return ts if ts and ts <= _OFFSET.keys() else None


def _move_pointer(
    state: State, owner: str, types: frozenset[str], ss: str, su: str, width: int, add: bool
) -> None:
    """`ptr += num` / `ptr -= num` for each region the pointer may point to."""
    u = var(owner, "uvalue")
    for t in types:
        off = var(owner, _OFFSET[t])
        if add:
            state.zone.assign_expr(off, off, ss)
        else:
            state.zone.assign_sub(off, off, ss)
    if add:
        state.zone.assign_expr(u, u, su)
    else:
        state.zone.assign_sub(u, u, su)
    _unsigned_result(state, owner, None, width)
    if "stack" in types:
        state.zone.forget(var(owner, "stack_numeric_size"))
        state.recompute_numeric_size(owner)


_OFFSET = {
    "ctx": "ctx_offset",
    "packet": "packet_offset",
    "stack": "stack_offset",
    "shared": "shared_offset",
    "socket": "socket_offset",
    "alloc_mem": "alloc_mem_offset",
}


def _add_imm(state: State, owner: str, imm: int, width: int) -> None:
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    ptr = _pointer_type(state, owner)
    if ptr is None:
        src = s if not state.eval(s).is_top() else u
        state.zone.assign(s, src, imm)
        _signed_result(state, owner, None, width)
        if not _is_number(state, owner):
            state.havoc_offsets(owner)
        return
    off = var(owner, _OFFSET[ptr])
    state.zone.assign(off, off, imm)
    state.zone.assign(u, u, imm)
    _unsigned_result(state, owner, None, width)
    if ptr == "stack":
        size = var(owner, "stack_numeric_size")
        if imm > 0:
            state.zone.assign(size, size, -imm)
        elif imm < 0:
            state.zone.forget(size)
        state.recompute_numeric_size(owner)


def _shift_imm(state: State, owner: str, op: BinOp, imm: int, width: int) -> None:
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    if not _is_number(state, owner):
        state.zone.forget_all([s, u])
        state.havoc_offsets(owner)
        return
    imm &= width - 1
    mask = (1 << width) - 1
    if op == BinOp.LSH:
        ui = state.eval(u)
        if not ui.is_finite() or not ui.within(0, U64_MAX):
            _unsigned_result(state, owner, Interval(0, U64_MAX), width)
            return
        lo, hi = ui.lo, ui.hi
        keep = width - imm
        if keep < 64 and (lo >> keep) != (hi >> keep):
            lo, hi = 0, (mask << imm) & mask
        else:
            lo, hi = (lo << imm) & mask, (hi << imm) & mask
        _unsigned_result(state, owner, Interval(lo, hi), width)
    elif op == BinOp.RSH:
        ui = state.eval(u)
        if ui.is_finite() and ui.within(0, U64_MAX):
            if width == 32:
                ui = ui.truncate_unsigned(32)
            value = Interval(ui.lo >> imm, ui.hi >> imm)
        else:
            value = Interval(0, U64_MAX >> imm)
        _unsigned_result(state, owner, value, width)
    else:
        si = eval_width(state, s, width) if width == 32 else state.eval(s)
        lo, hi = -(1 << 63) >> imm, S64_MAX >> imm
        if si.is_finite():
            if width == 64:
                lo, hi = si.lo >> imm, si.hi >> imm
            else:
                a, b = (si.lo >> imm) & U32_MAX, (si.hi >> imm) & U32_MAX
                if a <= b:
                    lo, hi = a, b
        _signed_result(state, owner, Interval(lo, hi), width)


def _bitwise(state: State, owner: str, op: BinOp, right: Interval, width: int) -> None:
    u = var(owner, "uvalue")
    left = state.eval(u)
    if op == BinOp.AND:
        value = left.and_(right)
    elif op == BinOp.OR:
        value = left.or_(right)
    else:
        value = left.xor(right)
    if width == 32:
        value = value.truncate_unsigned(32)
    _unsigned_result(state, owner, value, 64 if width == 64 else 32)
    state.havoc_offsets(owner)


def _bin(state: State, insn: Bin) -> None:
    owner = reg_owner(insn.dst.v)
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    width = 64 if insn.is64 else 32
    op = insn.op
    moves = (BinOp.MOV, BinOp.MOVSX8, BinOp.MOVSX16, BinOp.MOVSX32)
    if "uninit" in state.types_of(owner) and op not in moves:
        state.havoc_owner(owner)
        return
    if isinstance(insn.v, Imm):
        imm = insn.v.v if insn.is64 else _s32(insn.v.v)
        if not insn.is64:
            if _is_number(state, owner):
                _mask32(state, owner)
            else:
                state.havoc_owner(owner)
        if op == BinOp.MOV:
            state.havoc_owner(owner)
            state.types.set(owner, {"number"})
            state.zone.set(s, Interval.const(imm))
            state.zone.set(u, Interval.const(imm))
            overflow_bounds(state, u, width, False)
        elif op in (BinOp.ADD, BinOp.SUB):
            if imm == 0:
                return
            _add_imm(state, owner, imm if op == BinOp.ADD else -imm, width)
        elif op == BinOp.MUL:
            _signed_result(state, owner, eval_width(state, s, width) * imm, width)
            state.havoc_offsets(owner)
        elif op in (BinOp.UDIV, BinOp.UMOD):
            k = Interval.const(imm & ((1 << width) - 1))
            left = eval_width(state, u, width)
            value = left.udiv(k) if op == BinOp.UDIV else left.urem(k)
            _unsigned_result(state, owner, value, width)
            state.havoc_offsets(owner)
        elif op in (BinOp.SDIV, BinOp.SMOD):
            k = Interval.const(imm)
            left = eval_width(state, s, width)
            value = left.sdiv(k) if op == BinOp.SDIV else left.srem(k)
            _signed_result(state, owner, value, width)
            state.havoc_offsets(owner)
        elif op in (BinOp.AND, BinOp.OR, BinOp.XOR):
            k = imm & U64_MAX
            if op == BinOp.AND and k and k & (k + 1) == 0:
                si, ui = state.eval(s), state.eval(u)
                if (
                    si.within(0, k)
                    and ui.within(0, k)
                    and state.zone.diff(s, u) == Interval.const(0)
                ):
                    return
            _bitwise(state, owner, op, Interval.const(k), 64)
            if op == BinOp.AND and _s32(imm) > 0:
                state.zone.meet_interval(s, Interval(0, imm))
                state.zone.meet_interval(u, Interval(0, imm))
        elif op in (BinOp.LSH, BinOp.RSH, BinOp.ARSH):
            _shift_imm(state, owner, op, imm, width)
        else:
            state.havoc_owner(owner)
    else:
        _bin_reg(state, insn, owner, width)
    if not insn.is64 and not state.is_bottom():
        if _is_number(state, owner):
            _mask32(state, owner)
        else:
            state.havoc_owner(owner)


def _bin_reg(state: State, insn: Bin, owner: str, width: int) -> None:
    assert isinstance(insn.v, Reg)
    src = reg_owner(insn.v.v)
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    ss, su = var(src, "svalue"), var(src, "uvalue")
    op = insn.op
    if "uninit" in state.types_of(src):
        state.havoc_owner(owner)
        return
    dnum, snum = _is_number(state, owner), _is_number(state, src)
    if op == BinOp.MOV:
        if insn.is64 or snum:
            # A register move relates the signed views only for numbers (as PREVAIL).
            types = state.types_of(src)
            state.copy_owner(owner, src, with_svalue=not types or "number" in types)
        else:
            state.havoc_owner(owner)
    elif op in (BinOp.MOVSX8, BinOp.MOVSX16, BinOp.MOVSX32):
        bits = {BinOp.MOVSX8: 8, BinOp.MOVSX16: 16, BinOp.MOVSX32: 32}[op]
        half = 1 << (bits - 1)
        if insn.is64 and owner == src and state.eval(s).within(-half, half - 1):
            return  # a no-op: keep what is known, relations included
        if snum:
            value = state.eval(ss).truncate_signed(bits)
            state.havoc_owner(owner)
            state.types.set(owner, {"number"})
            _signed_result(state, owner, value, width)
        else:
            state.havoc_owner(owner)
    elif op == BinOp.ADD:
        dptrs, sptrs = _pointer_types(state, owner), _pointer_types(state, src)
        if dnum and snum:
            base = s if not state.eval(s).is_top() else u
            if owner == src:
                state.zone.assign_linear(s, {base: 2})
            else:
                state.zone.assign_expr(s, base, ss)
            _signed_result(state, owner, None, width)
        elif dptrs and snum:
            _move_pointer(state, owner, dptrs, ss, su, width, add=True)
        elif dnum and sptrs:
            for t in sptrs:
                state.zone.assign_expr(var(owner, _OFFSET[t]), s, var(src, _OFFSET[t]))
            for kind in ("stack_numeric_size", "shared_region_size"):
                if kind.split("_")[0] in sptrs:
                    state.zone.assign(var(owner, kind), var(src, kind))
            state.zone.assign_expr(u, u, su)
            state.types.unify(owner, src)
            _unsigned_result(state, owner, None, width)
        else:
            state.havoc_owner(owner)
    elif op == BinOp.SUB:
        dptr, sptr = _pointer_type(state, owner), _pointer_type(state, src)
        dptrs = _pointer_types(state, owner)
        if dnum and snum:
            base = s if not state.eval(s).is_top() else u
            if owner == src:
                state.zone.set(s, Interval.const(0))
            else:
                state.zone.assign_sub(s, base, ss)
            _signed_result(state, owner, None, width)
        elif dptrs and snum:
            _move_pointer(state, owner, dptrs, ss, su, width, add=False)
        elif dptr and dptr == sptr:
            off = _OFFSET[dptr]
            if owner == src:
                state.zone.set(s, Interval.const(0))
            else:
                state.zone.assign_sub(s, var(owner, off), var(src, off))
            state.havoc_offsets(owner)
            state.types.set(owner, {"number"})
            _signed_result(state, owner, None, width)
        elif state.types.same(owner, src) and state.types_of(owner) <= set(_OFFSET) | {"number"}:
            # Same (unknown) region on both sides: the difference, joined over the types.
            value = Interval.bottom()
            for t in state.types_of(owner):
                if t == "number":
                    value = value.join(state.eval(s) - state.eval(ss))
                else:
                    value = value.join(
                        state.zone.diff(var(owner, _OFFSET[t]), var(src, _OFFSET[t]))
                    )
            state.havoc_owner(owner)
            state.types.set(owner, {"number"})
            _signed_result(state, owner, value, width)
        else:
            state.havoc_owner(owner)
    elif op == BinOp.MUL:
        value = eval_width(state, s, width) * eval_width(state, ss, width)
        _signed_result(state, owner, value, width)
        state.havoc_offsets(owner)
    elif op in (BinOp.UDIV, BinOp.UMOD):
        left, right = eval_width(state, u, width), eval_width(state, su, width)
        value = left.udiv(right) if op == BinOp.UDIV else left.urem(right)
        _unsigned_result(state, owner, value, width)
        state.havoc_offsets(owner)
    elif op in (BinOp.SDIV, BinOp.SMOD):
        left, right = eval_width(state, s, width), eval_width(state, ss, width)
        value = left.sdiv(right) if op == BinOp.SDIV else left.srem(right)
        _signed_result(state, owner, value, width)
        state.havoc_offsets(owner)
    elif op in (BinOp.AND, BinOp.OR, BinOp.XOR):
        _bitwise(state, owner, op, state.eval(su), width)
    elif op in (BinOp.LSH, BinOp.RSH, BinOp.ARSH):
        amount = state.eval(su).singleton() if snum else None
        if amount is not None:
            if not insn.is64:
                _mask32(state, owner)
            _shift_imm(state, owner, op, amount, width)
        elif op == BinOp.LSH:
            _unsigned_result(state, owner, Interval(0, U64_MAX), width)
            state.havoc_offsets(owner)
        else:
            state.zone.forget_all([s, u])
    else:
        state.havoc_owner(owner)


def _s32(v: int) -> int:
    v &= U32_MAX
    return v - (1 << 32) if v >> 31 else v


# ---------------------------------------------------------------- unary


def _swap(value: int, nbytes: int) -> int:
    return int.from_bytes((value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


def _un(state: State, insn: Un, opts: AnalysisOptions) -> None:
    owner = reg_owner(insn.dst.v)
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    width = 64 if insn.is64 else 32
    if insn.op == UnOp.NEG:
        _signed_result(state, owner, eval_width(state, s, width) * -1, width)
        if not insn.is64:
            _mask32(state, owner)
        return
    bits = int(insn.op.value[-2:])
    name = insn.op.value[:-2]
    swaps = name == "swap" or (name == "be") != opts.big_endian
    if bits == 64 and not swaps:
        return
    number = _is_number(state, owner)
    for v, signed in ((s, True), (u, False)):
        c = state.eval(v).singleton()
        if not number or c is None:
            state.zone.forget(v)
            if number and bits < 64 and opts.linux_rules:
                # The result is zero-extended from `bits`, as the kernel knows (PREVAIL's
                # YAML cases expect the range lost, so only on the load path).
                state.zone.set(v, Interval(0, (1 << bits) - 1))
            continue
        low = c & ((1 << bits) - 1)
        value = _swap(low, bits // 8) if swaps else low
        state.zone.set(v, Interval.const(_s64(value) if signed and bits == 64 else value))
    if not number:
        state.havoc_offsets(owner)


# ---------------------------------------------------------------- bpf-to-bpf calls

_CALLEE_SAVED = range(6, 10)


def _call_local(state: State, insn: CallLocal, opts: AnalysisOptions | None = None) -> None:
    """Enter a callee: save r6-r9 under the frame's name, move r10 to the new frame.

    On the load path (`linux_rules`) the callee's r6-r9 are uninitialised, as
    in the kernel (a new frame starts with only r1-r5 and r10): reading one
    is "R6 !read_ok" (linux_rules.py). PREVAIL lets the callee see them.
    """
    if insn.signature is not None and opts is not None:
        _enter_global(state, insn.frame, insn.signature, opts)
    for r in _CALLEE_SAVED:
        state.copy_owner(f"{insn.frame}/r{r}", reg_owner(r))
        if opts is not None and opts.linux_rules:
            state.havoc_owner(reg_owner(r))
            state.set_type(reg_owner(r), {"uninit"})
    _add_imm(state, reg_owner(10), -SUBPROGRAM_STACK_SIZE, 64)


#: What a caller knows of the packet and its metadata, which a global function
#: does not: saved under the frame's name on entry, restored on return.
_PACKET_FACTS = ("packet_size", "meta_offset")


def _enter_global(state: State, frame: str, sig: GlobalSignature, opts: AnalysisOptions) -> None:
    """Enter a global function: its arguments as its prototype types them (global_functions.py).

    The caller's stack memory passed as an argument holds unknown numbers
    from here on (the kernel clobbers it at the call: the callee may write
    it). The callee sees numbers it knows nothing of, nullable memory of the
    prototype's size, the context, and a packet it has not checked.
    """
    for i, arg in enumerate(sig.args):
        if arg.kind == GlobalArgKind.MEM:
            write_stack_numbers(state, i + 1, Interval.const(arg.size), whole_range=True)
    for name in _PACKET_FACTS:
        state.zone.assign(f"{frame}/{name}", name, 0)
    state.zone.set("packet_size", Interval(0, opts.max_packet_size - 1))
    if state.eval("meta_offset").singleton() != 0:
        state.zone.set("meta_offset", Interval(-4098, 0))
    for r in range(1, 6):
        owner = reg_owner(r)
        arg = sig.args[r - 1] if r <= len(sig.args) else None
        if arg is not None and arg.kind == GlobalArgKind.CTX:
            continue
        state.havoc_owner(owner)
        if arg is None:
            state.set_type(owner, {"uninit"})
        elif arg.kind == GlobalArgKind.SCALAR:
            state.set_type(owner, {"number"})
        else:
            state.set_type(owner, {"shared"})
            state.zone.set(var(owner, "shared_offset"), Interval.const(0))
            state.zone.set(var(owner, "shared_region_size"), Interval.const(arg.size))
            state.zone.set(var(owner, "uvalue"), Interval(0, PTR_MAX))


def _leave_global(state: State, frame: str, changes_packet: bool) -> None:
    """Back from a global function: r0 an unknown number, the caller's packet facts back
    (unless the callee may have moved the packet, which invalidated them)."""
    state.havoc_owner(reg_owner(0))
    state.set_type(reg_owner(0), {"number"})
    for name in _PACKET_FACTS:
        saved = f"{frame}/{name}"
        if not changes_packet:
            state.zone.assign(name, saved, 0)
        state.zone.forget(saved)


LOOP, FOR_EACH_MAP_ELEM = 181, 164
MAX_LOOPS = 1 << 23  # bpf_loop's limit on nr_loops


def _callback_entry(state: State, insn: CallbackEntry, opts: AnalysisOptions) -> None:
    """Call a helper's callback: save the caller's r1-r9, pass the arguments, new frame.

    bpf_loop(nr, cb, ctx, flags) calls cb(index, ctx); for_each_map_elem(map,
    cb, ctx, flags) calls cb(map, key, value, ctx), key and value pointing
    into the map's element.
    """
    frame = insn.frame
    for r in range(1, 10):
        state.copy_owner(f"{frame}/r{r}", reg_owner(r))
    if insn.func == LOOP:
        index = Interval(0, MAX_LOOPS - 1)
        state.assign_number(reg_owner(1), index, index)
        state.copy_owner(reg_owner(2), f"{frame}/r3")
        for r in (3, 4, 5):
            state.havoc_owner(reg_owner(r))
    else:
        fd = state.eval(var(reg_owner(1), "map_fd"))
        maps = opts.maps_in(fd.lo if fd.lb_finite() else None, fd.hi if fd.ub_finite() else None)
        for r, size in (
            (2, min(m.key_size for m in maps)),
            (3, min(m.value_size for m in maps)),
        ):
            owner = reg_owner(r)
            state.havoc_owner(owner)
            state.set_type(owner, {"shared"})
            state.zone.set(var(owner, "shared_offset"), Interval.const(0))
            state.zone.set(var(owner, "shared_region_size"), Interval.const(size))
            state.zone.set(var(owner, "uvalue"), Interval(1, PTR_MAX))
        state.copy_owner(reg_owner(4), f"{frame}/r3")
        state.havoc_owner(reg_owner(5))
    state.havoc_owner(reg_owner(0))
    _add_imm(state, reg_owner(10), -SUBPROGRAM_STACK_SIZE, 64)


def _return(state: State, frame: str) -> None:
    """Leave a callee: forget its stack frame, restore r6-r10, scratch r1-r5."""
    top = state.eval(var(reg_owner(10), "stack_offset")).singleton()
    if top is not None:
        lo = max(top - SUBPROGRAM_STACK_SIZE, STACK_LO)
        forget_stack(state, lo, top - lo)
    for r in _CALLEE_SAVED:
        saved = f"{frame}/r{r}"
        state.copy_owner(reg_owner(r), saved)
        state.havoc_owner(saved)
    _add_imm(state, reg_owner(10), SUBPROGRAM_STACK_SIZE, 64)
    for r in range(1, 6):
        state.havoc_owner(reg_owner(r))
