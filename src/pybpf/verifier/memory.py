"""Transfer functions for memory: loads, stores, atomics, and helper calls.

The stack is the only region whose contents are tracked: a store at a
known offset kills the cells it overlaps, creates a cell holding the
stored register's type and values, and marks the bytes numeric (or not);
a load of exactly a cell copies it back. Context loads of the `data`,
`data_end` and `data_meta` fields produce packet pointers at offsets 0,
`packet_size` and `meta_offset`. Loads from elsewhere give numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from ..platform.helper_prototypes import ArgKind, RetKind, builtin_prototype, prototype
from .domains.interval import U64_MAX, Interval
from .domains.stack import STACK_LO, STACK_SIZE, cell_name
from .frozen_maps import frozen_constant, tag_map
from .ir import Atomic, Bin, BinOp, Call, Imm, Mem, Reg
from .options import AnalysisOptions
from .state import NUM_REGS, State, overflow_bounds, reg_owner, var


def ref_var(pc: int) -> str:
    """The zone variable counting the outstanding references acquired at `pc`."""
    return f"ref[{pc}]"


_ZERO = Interval.const(0)
# Pointers are non-zero numbers below this bound (PREVAIL's `ptr_max`).
PTR_MAX = 2147418112


def _stack_offset(state: State, reg: Reg, off: int) -> Interval:
    return state.eval(var(reg_owner(reg.v), "stack_offset")) + off


def _kill_cells(state: State, offset: int, size: int, big_endian: bool | None = None) -> None:
    """Forget the cells overlapping [offset, offset+size).

    With `big_endian` given, the parts of a constant cell left outside the
    range survive as smaller cells holding their bytes (as PREVAIL splits them).
    """
    for cell in state.stack.overlapping(offset, size):
        name = cell_name(*cell)
        value = state.eval(var(name, "uvalue")).singleton()
        numeric = state.types_of(name) == {"number"}
        state.stack.cells.discard(cell)
        state.havoc_owner(name)
        if big_endian is None or value is None or not numeric:
            continue
        raw = _to_bytes(value, cell[1], big_endian)
        for lo, hi in ((cell[0], offset), (offset + size, cell[0] + cell[1])):
            n = hi - lo
            if n in (1, 2, 4, 8) and lo >= cell[0] and hi <= cell[0] + cell[1]:
                part = _from_bytes(raw[lo - cell[0] : hi - cell[0]], big_endian)
                state.stack.cells.add((lo, n))
                state.assign_number(
                    cell_name(lo, n),
                    Interval.const(part if n < 8 else _signed(part, 8)),
                    Interval.const(part),
                )


def _to_bytes(value: int, size: int, big_endian: bool) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big" if big_endian else "little")


def _from_bytes(raw: bytes, big_endian: bool) -> int:
    return int.from_bytes(raw, "big" if big_endian else "little")


def _signed(value: int, size: int) -> int:
    return value - (1 << (8 * size)) if value >> (8 * size - 1) else value


def _compose(state: State, off: int, width: int, big_endian: bool) -> int | None:
    """The constant stored in [off, off+width) when constant cells cover it exactly."""
    raw = bytearray(width)
    covered = 0
    for o, n in state.stack.overlapping(off, width):
        name = cell_name(o, n)
        value = state.eval(var(name, "uvalue")).singleton()
        if value is None:
            value = state.eval(var(name, "svalue")).singleton()
        if value is None or state.types_of(name) != {"number"}:
            return None
        cell_bytes = _to_bytes(value, n, big_endian)
        for i in range(max(o, off), min(o + n, off + width)):
            raw[i - off] = cell_bytes[i - o]
            covered += 1
    if covered != width:
        return None
    return _from_bytes(bytes(raw), big_endian)


def _narrow_by_width(state: State, owner: str, width: int, signed: bool) -> None:
    """Bounds a narrow load gives its result (PREVAIL: only 1- and 2-byte loads are bounded)."""
    s, u = var(owner, "svalue"), var(owner, "uvalue")
    if signed and width in (1, 2, 4):
        half = 1 << (8 * width - 1)
        state.zone.set(s, Interval(-half, half - 1))
        state.zone.forget(u)
    elif width in (1, 2):
        full = Interval(0, (1 << (8 * width)) - 1)
        state.zone.set(s, full)
        state.zone.set(u, full)


def _load_number(state: State, dst: str, width: int, signed: bool) -> None:
    state.havoc_owner(dst)
    state.types.set(dst, {"number"})
    _narrow_by_width(state, dst, width, signed)


def load(state: State, insn: Mem, opts: AnalysisOptions) -> None:
    """`dst = *(width *)(base + off)`."""
    base = insn.access.basereg
    width = insn.access.width
    assert isinstance(insn.value, Reg)
    dst = reg_owner(insn.value.v)
    btypes = state.reg_types(base.v)
    if base.v == 10 or btypes == {"stack"}:
        _load_stack(state, base, insn, dst, opts)
    elif btypes == {"ctx"}:
        addr = state.eval(var(reg_owner(base.v), "ctx_offset")) + insn.access.offset
        _load_ctx(state, dst, addr, width, insn.is_signed, opts)
    elif btypes <= _NUMERIC_REGIONS:
        known = frozen_constant(state, base.v, insn, opts) if btypes == {"shared"} else None
        _load_number(state, dst, width, insn.is_signed)
        if known is not None:  # a frozen read-only map's bytes (frozen_maps.py)
            state.assign_number(dst, *known)
    elif btypes <= _NUMERIC_REGIONS | {"stack"} and _stack_numeric(state, base, insn):
        # The stack on some paths, a region of numbers on the others (PREVAIL joins
        # the load over the types): numeric stack bytes give a number too.
        _load_number(state, dst, width, insn.is_signed)
    else:
        state.havoc_owner(dst)


_NUMERIC_REGIONS = frozenset({"packet", "shared", "alloc_mem", "socket", "btf_id"})


def _stack_numeric(state: State, base: Reg, insn: Mem) -> bool:
    """Whether the stack bytes a load through `base` may read are all numbers."""
    width = insn.access.width
    offs = _stack_offset(state, base, insn.access.offset)
    if offs.is_finite() and state.stack.all_numeric(offs.lo, offs.hi - offs.lo + width):
        return True
    size = state.eval(var(reg_owner(base.v), "stack_numeric_size"))
    return insn.access.offset >= 0 and size.lb_finite() and size.lo >= width + insn.access.offset


def _load_stack(state: State, base: Reg, insn: Mem, dst: str, opts: AnalysisOptions) -> None:
    width = insn.access.width
    off = _stack_offset(state, base, insn.access.offset).singleton()
    if off is not None and (off, width) in state.stack.cells:
        cell = cell_name(off, width)
        ctypes = state.types_of(cell)
        if width == 8 or ctypes == {"number"}:
            state.copy_owner(dst, cell)
            if width < 8:
                state.havoc_offsets(dst)
            if insn.is_signed:
                _narrow_by_width(state, dst, width, True)
            return
    if off is not None and not insn.is_signed:
        value = _compose(state, off, width, opts.big_endian)
        if value is not None:
            state.assign_number(
                dst,
                Interval.const(_signed(value, width) if width == 8 else value),
                Interval.const(value),
            )
            return
    size = state.eval(var(reg_owner(base.v), "stack_numeric_size"))
    numeric = off is not None and state.stack.all_numeric(off, width)
    if numeric or size.lo >= width + insn.access.offset or opts.allow_uninit_stack:
        # allow_uninit_stack (root): bytes never written, or part of a spilled
        # pointer, read as an unknown number, as the kernel marks them
        state.havoc_owner(dst)
        state.types.set(dst, {"number"})
        if insn.is_signed:
            _narrow_by_width(state, dst, width, True)
        return
    state.havoc_owner(dst)


def _load_ctx(
    state: State, dst: str, addr: Interval, width: int, signed: bool, opts: AnalysisOptions
) -> None:
    ctx = opts.ctx
    state.havoc_owner(dst)
    at = addr.singleton()
    for offset, field_width, size in ctx.regions:
        if at == offset and width == field_width:
            # A pointer field (flow_keys): a non-null pointer to `size` bytes.
            state.set_type(dst, {"shared"})
            state.zone.set(var(dst, "shared_offset"), _ZERO)
            state.zone.set(var(dst, "shared_region_size"), Interval.const(size))
            state.zone.set(var(dst, "uvalue"), Interval(4098, PTR_MAX))
            return
    if ctx.end < 0:
        _load_number(state, dst, width, signed)
        return
    field = ctx.end - ctx.data
    read = Interval(addr.lo, addr.hi + width - 1) if addr.is_finite() else Interval.top()
    touches = any(
        start >= 0 and not read.meet(Interval(start, start + field - 1)).is_bottom
        for start in (ctx.data, ctx.meta, ctx.end)
    )
    if at is None or at not in (ctx.data, ctx.end, ctx.meta) or at < 0:
        if not touches:
            _load_number(state, dst, width, signed)
        return
    if width != field:
        return
    target = var(dst, "packet_offset")
    state.set_type(dst, {"packet"})
    if at == ctx.data:
        state.zone.set(target, _ZERO)
    elif at == ctx.end:
        state.zone.assign(target, "packet_size")
        state.zone.add_constraint_le(target, None, opts.max_packet_size - 1)
    else:
        state.zone.assign(target, "meta_offset")
    state.zone.set(var(dst, "uvalue"), Interval(4098, PTR_MAX))


def store(state: State, insn: Mem, opts: AnalysisOptions) -> None:
    """`*(width *)(base + off) = value`."""
    base = insn.access.basereg
    btypes = state.reg_types(base.v)
    if "stack" not in btypes:
        return
    width = insn.access.width
    offs = _stack_offset(state, base, insn.access.offset)
    # A base that may point elsewhere too (`{stack, shared}`) may or may not write the
    # stack: what it may overwrite is forgotten, as for an unknown offset.
    off = offs.singleton() if btypes == {"stack"} else None
    if off is None:
        number = isinstance(insn.value, Imm) or state.reg_types(insn.value.v) == {"number"}
        if offs.is_finite():
            lo, hi = max(offs.lo, STACK_LO), min(offs.hi + width, STACK_SIZE)
            _kill_cells(state, lo, hi - lo)
            if not number:
                state.stack.set_numeric(lo, hi - lo, False)
        else:
            for cell in list(state.stack.cells):
                _kill_cells(state, *cell)
            if not number:
                state.stack.num_bytes = 0
        state.stack_changed(STACK_LO, STACK_SIZE - STACK_LO, number)
        return
    _kill_cells(state, off, width, opts.big_endian)
    cell = cell_name(off, width)
    if isinstance(insn.value, Imm):
        imm = insn.value.v
        if width == 8:
            s, u = imm, imm & U64_MAX
        else:
            u = imm & ((1 << (8 * width)) - 1)
            s = u
        state.stack.cells.add((off, width))
        state.assign_number(cell, Interval.const(s), Interval.const(u))
        state.stack.set_numeric(off, width, True)
        state.stack_changed(off, width, True)
        return
    src = reg_owner(insn.value.v)
    stypes = state.types_of(src)
    numeric = stypes == {"number"}
    state.stack.set_numeric(off, width, numeric)
    if width == 8 or numeric:
        state.stack.cells.add((off, width))
        state.copy_owner(cell, src)
        if width < 8:
            state.havoc_offsets(cell)
            overflow_bounds(state, var(cell, "svalue"), 8 * width, True)
            overflow_bounds(state, var(cell, "uvalue"), 8 * width, False)
    state.stack_changed(off, width, numeric)


_ATOMIC_BIN = {"ADD": BinOp.ADD, "OR": BinOp.OR, "AND": BinOp.AND, "XOR": BinOp.XOR}
# Scratch owners for atomic read-modify-write on the stack (not real registers).
_OLD, _NEW = "r11", "r12"


def atomic(state: State, insn: Atomic) -> None:
    """Atomic read-modify-write; exact on a known numeric stack cell, else values are forgotten."""
    from .transfer import transfer  # the ALU semantics (imported late: transfer imports us)

    base = insn.access.basereg
    width = insn.access.width
    name = insn.op.name.removeprefix("FETCH_")
    target = reg_owner(0) if name == "CMPXCHG" else reg_owner(insn.valreg.v)
    off = None
    btypes = state.reg_types(base.v)
    if btypes == {"stack"}:
        off = _stack_offset(state, base, insn.access.offset).singleton()
    if off is None and "stack" in btypes:
        # An unknown stack offset, or a base that may point elsewhere: every cell the
        # operation may change is forgotten (its bytes stay as numeric as they were).
        offs = _stack_offset(state, base, insn.access.offset)
        if offs.is_finite():
            lo, hi = max(offs.lo, STACK_LO), min(offs.hi + width, STACK_SIZE)
            if hi > lo:
                _kill_cells(state, lo, hi - lo)
        else:
            for c in list(state.stack.cells):
                _kill_cells(state, *c)
    cell = cell_name(off, width) if off is not None else None
    if (
        cell is not None
        and (off, width) in state.stack.cells
        and state.types_of(cell) == {"number"}
    ):
        state.copy_owner(_OLD, cell)
        if name in _ATOMIC_BIN:
            state.copy_owner(_NEW, cell)
            transfer(
                state, Bin(_ATOMIC_BIN[name], Reg(12), insn.valreg, width == 8), AnalysisOptions()
            )
        elif name == "XCHG":
            state.copy_owner(_NEW, reg_owner(insn.valreg.v))
        else:
            state.assign_number(_NEW, Interval.top(), Interval.top())
        state.copy_owner(cell, _NEW)
        if insn.fetch:
            state.copy_owner(target, _OLD)
        state.havoc_owner(_OLD)
        state.havoc_owner(_NEW)
        return
    if off is not None:
        numeric = state.stack.all_numeric(off, width)
        _kill_cells(state, off, width)
        state.stack.set_numeric(off, width, numeric)
    if insn.fetch:
        state.assign_number(target, Interval.top(), Interval.top())


_WRITES = {
    ArgKind.PTR_TO_UNINIT_MEM,
    ArgKind.PTR_TO_UNINIT_MEM_OR_NULL,
    ArgKind.PTR_TO_UNINIT_MAP_VALUE,
}


def call_helper(state: State, insn: Call | None, opts: AnalysisOptions) -> None:
    """A helper call: written stack bytes become numbers, r1-r5 are scratched, r0 set."""
    proto = prototype(insn.func) if insn is not None else None
    fd_range = state.eval(var(reg_owner(1), "map_fd"))
    map_fd = fd_range.singleton()
    candidates = opts.maps_in(
        fd_range.lo if fd_range.lb_finite() else None,
        fd_range.hi if fd_range.ub_finite() else None,
    )
    # Of several possible maps, the smallest value is what is surely there.
    value_size = min(d.value_size for d in candidates)
    alloc_size = state.eval(var(reg_owner(2), "svalue"))
    if proto is not None and proto.releases is not None and opts.linux_rules:
        _release(state, proto.releases + 1)
    if proto is not None:
        for i, kind in enumerate(proto.args[:5]):
            if kind not in _WRITES:
                continue
            reg = i + 1
            if kind == ArgKind.PTR_TO_UNINIT_MAP_VALUE:
                size = Interval.const(value_size)
            else:
                size = state.eval(var(reg_owner(reg + 1), "svalue"))
            # The kernel marks the whole (largest) range written for uninit memory.
            write_stack_numbers(state, reg, size, whole_range=True)
    for r in range(1, 6):
        state.havoc_owner(reg_owner(r))
    if proto is not None and proto.changes_pkt_data:
        # The packet may have moved: every packet pointer is invalid, in r6-r9, in the
        # registers callers saved, and spilled to the stack (the kernel's
        # clear_all_pkt_pointers after bpf_helper_changes_pkt_data).
        _invalidate(state, lambda types: "packet" in types)
        # And its size and headroom are new: what was proven of the old ones is void.
        state.zone.set("packet_size", Interval(0, opts.max_packet_size - 1))
        if state.eval("meta_offset").singleton() != 0:
            state.zone.set("meta_offset", Interval(-4098, 0))
    r0 = reg_owner(0)
    state.havoc_owner(r0)
    if proto is not None and proto.ret == RetKind.PTR_TO_MAP_VALUE_OR_NULL:
        inner = opts.map(map_fd).inner if map_fd is not None else None
        if inner is not None:
            # A map of maps yields the inner map's fd, or null (PREVAIL's do_load_mapfd).
            state.set_type(r0, {"map_fd"})
            state.zone.set(var(r0, "map_fd"), Interval.const(inner))
            state.zone.set(var(r0, "uvalue"), Interval(0, PTR_MAX))
            return
        state.set_type(r0, {"shared"})
        state.zone.set(var(r0, "shared_offset"), _ZERO)
        state.zone.set(var(r0, "shared_region_size"), Interval.const(value_size))
        state.zone.set(var(r0, "uvalue"), Interval(0, PTR_MAX))
        tag_map(state, r0, map_fd, opts)  # read-only maps (frozen_maps.py)
        return
    if proto is not None and proto.ret == RetKind.PTR_TO_ALLOC_MEM_OR_NULL:
        # A ringbuf reservation: r2 bytes of fresh memory, or null.
        state.set_type(r0, {"alloc_mem"})
        state.zone.set(var(r0, "alloc_mem_offset"), _ZERO)
        size = alloc_size if alloc_size.lb_finite() else Interval(0, alloc_size.hi)
        state.zone.set(var(r0, "alloc_mem_size"), size.meet(Interval(0, PTR_MAX)))
        state.zone.set(var(r0, "uvalue"), Interval(0, PTR_MAX))
        if opts.linux_rules and insn is not None and proto.acquires:
            # A new reference, named by the reserving call's pc (linux_rules.py).
            state.zone.set(var(r0, "alloc_mem_id"), Interval.const(insn.pc))
            ref = ref_var(insn.pc)
            state.zone.assign(ref, ref, 1)
        return
    if proto is not None and proto.ret in _SOCKET_RETURNS:
        # A socket lookup: struct bpf_sock (full) or its sock_common part, or null; a
        # reference named by the lookup's pc, as a ringbuf reservation's.
        state.set_type(r0, {"socket"})
        state.zone.set(var(r0, "socket_offset"), _ZERO)
        full = proto.ret == RetKind.PTR_TO_SOCKET_OR_NULL
        state.zone.set(var(r0, "socket_full"), Interval.const(int(full)))
        state.zone.set(var(r0, "uvalue"), Interval(0, PTR_MAX))
        if opts.linux_rules and insn is not None and proto.acquires:
            state.zone.set(var(r0, "socket_id"), Interval.const(insn.pc))
            ref = ref_var(insn.pc)
            state.zone.assign(ref, ref, 1)
        return
    state.types.set(r0, {"number"})


_SOCKET_RETURNS = frozenset({RetKind.PTR_TO_SOCKET_OR_NULL, RetKind.PTR_TO_SOCK_COMMON_OR_NULL})
#: The pointer kinds that hold references, and the variable naming the reference.
_REF_ID = {"alloc_mem": "alloc_mem_id", "socket": "socket_id"}


def write_stack_numbers(state: State, reg: int, size: Interval, *, whole_range: bool) -> None:
    """A callee writes `size` bytes of numbers where `reg` points, if that is the stack.

    Every cell the write may touch is forgotten (the old values are stale
    wherever the pointer or the size is not one constant, and whatever
    other region the pointer may point to). The bytes become numbers when
    `reg` surely points to the stack at one offset: the bytes surely
    written (`size`'s lower bound), or with `whole_range` all `size.hi`
    (helpers' uninit memory, which the kernel marks written in full).
    """
    types = state.reg_types(reg)
    if "stack" not in types or (size.ub_finite() and size.hi <= 0):
        return
    offs = state.eval(var(reg_owner(reg), "stack_offset"))
    if not (offs.is_finite() and size.is_finite()):
        for cell in list(state.stack.cells):
            _kill_cells(state, *cell)
        return
    lo, hi = max(offs.lo, STACK_LO), min(offs.hi + size.hi, STACK_SIZE)
    if hi > lo:
        _kill_cells(state, lo, hi - lo)
    start = offs.singleton()
    if types == {"stack"} and start is not None:
        end = start + (size.hi if whole_range else max(size.lo, 0))
        if end > start:
            state.stack.set_numeric(start, end - start, True)
    # Numbers only add numeric bytes: the registers' stack_numeric_size stay true.


def call_builtin(state: State, insn: Call) -> None:
    """A compiler builtin (memset, memcpy, …): the destination's bytes become numbers.

    Its assertions (assertions.builtin_assertions) proved the size a
    positive number, the destination writable and the sources readable
    (readable stack is numeric, so what a copy writes is numbers too).
    r1-r5 are scratched and r0 is a number, as after a helper.
    """
    proto = builtin_prototype(insn.func)
    if proto is not None:
        size = state.eval(var(reg_owner(proto.size), "svalue"))
        for reg in proto.writes:
            write_stack_numbers(state, reg, size, whole_range=False)
    for r in range(0, 6):
        state.havoc_owner(reg_owner(r))
    state.types.set(reg_owner(0), {"number"})


def _owners(state: State) -> list[str]:
    """Every register, saved register and stack cell whose type is known."""
    return list(state.types.types)


def _invalidate(state: State, doomed: Callable[[frozenset[str]], bool]) -> None:
    """Forget every owner whose types satisfy `doomed` (stack cells are dropped)."""
    cells = {cell_name(*c): c for c in state.stack.cells}
    for owner in _owners(state):
        if not doomed(state.types_of(owner)):
            continue
        if owner in cells:
            _kill_cells(state, *cells[owner])
        else:
            state.havoc_owner(owner)


def _same_reference(state: State, owner: str, kind: str, ref: int | None) -> bool:
    if kind not in state.types_of(owner):
        return False
    return ref is None or ref in state.eval(var(owner, _REF_ID[kind]))


def _release(state: State, reg: int) -> None:
    """Submit/discard of a reservation, sk_release of a socket: one reference less.

    Every copy of the pointer becomes invalid. When the analysis cannot
    tell which reference `reg` holds, every copy of every reference of
    that kind becomes invalid and no count goes down, so the exit check
    reports the leak.
    """
    owner = reg_owner(reg)
    types = state.types_of(owner)
    if len(types) != 1 or next(iter(types)) not in _REF_ID:
        return
    kind = next(iter(types))
    ref = state.eval(var(owner, _REF_ID[kind])).singleton()
    if ref is not None:
        name = ref_var(ref)
        state.zone.assign(name, name, -1)
    for other in _owners(state):
        if other != owner and _same_reference(state, other, kind, ref):
            state.havoc_owner(other)


def release_null_references(state: State) -> None:
    """After a branch condition: a reservation or socket known to be null holds no reference.

    The kernel releases the reference on the branch where the pointer is
    NULL (mark_ptr_or_null_regs); every copy of it becomes the number 0.
    """
    for r in range(NUM_REGS):
        owner = reg_owner(r)
        types = state.types_of(owner)
        if len(types) != 1 or next(iter(types)) not in _REF_ID:
            continue
        kind = next(iter(types))
        if state.eval(var(owner, "uvalue")).singleton() != 0:
            continue
        ref = state.eval(var(owner, _REF_ID[kind])).singleton()
        if ref is None:
            continue
        name = ref_var(ref)
        state.zone.assign(name, name, -1)
        for other in _owners(state):
            if _same_reference(state, other, kind, ref):
                state.assign_number(other, Interval.top(), Interval.top())
        state.assign_number(owner, _ZERO, _ZERO)


def forget_stack(state: State, offset: int, size: int) -> None:
    """Forget the stack bytes [offset, offset+size) (a callee's frame on return)."""
    _kill_cells(state, offset, size)
    state.stack.set_numeric(offset, size, False)
    state.stack_changed(offset, size, False)
