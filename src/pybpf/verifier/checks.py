"""Deciding assertions against an abstract state (PREVAIL's `ebpf_checker.cpp`).

`check(state, assertion, opts)` returns None when the state proves the
assertion, else the reason, formatted as PREVAIL prints it:
`"Upper bound must be at most packet_size (valid_access(r1.offset, width=8) for write)"`.
"""

from __future__ import annotations

import functools

from ..errors import ProgramFault
from ..platform.contexts import ContextAccess, sock_addr_access_error
from ..platform.program_type_info import context_access
from .assertions import (
    AccessType,
    Addable,
    Assertion,
    BoundedLoopCount,
    Comparable,
    FuncConstraint,
    ScalarReturn,
    TypeConstraint,
    TypeGroup,
    ValidAccess,
    ValidDivisor,
    ValidGlobalCall,
    ValidMapKeyValue,
    ValidSize,
    ValidSocket,
    ValidStore,
    ZeroAllocOffset,
    ZeroCtxOffset,
    helper_assertions,
)
from .domains.interval import Interval
from .domains.stack import SUBPROGRAM_STACK_SIZE
from .global_functions import ArgKind as GlobalArgKind
from .global_functions import GlobalArg
from .ir import Imm, Reg
from .options import AnalysisOptions
from .state import State, reg_owner, var

#: The kernel's BPF_MAX_VAR_OFF: the largest offset a pointer may carry.
MAX_VAR_OFF = 1 << 29


#: sizeof(struct bpf_sock) and the fields read at their exact offset, narrow or whole
#: (family, type, protocol, src_port, state, rx_queue_mapping).
SOCK_SIZE = 80
_SOCK_NARROW_AT = frozenset({4, 8, 12, 44, 72, 76})
#: Address fields read narrow anywhere inside: src_ip4, src_ip6, dst_ip4, dst_ip6.
_SOCK_NARROW_IN = ((24, 28), (28, 44), (52, 56), (56, 72))
#: struct bpf_sock's type, protocol, mark and priority: not in sock_common.
_SOCK_FULL_ONLY = (8, 24)


def sock_access_ok(off: int, size: int, full: bool) -> bool:
    """Whether a `size`-byte read at `off` of struct bpf_sock is allowed (net/core/filter.c).

    bpf_sock_is_valid_access for a full socket, bpf_sock_common_is_valid_access
    for a sock_common: in bounds, aligned to its size; the fields above narrow
    (1, 2 or 4 bytes within the 4-byte field), dst_port as 2 bytes (or
    narrower) or 4 with its padding, never the padding alone; the rest
    (bound_dev_if, mark, priority) only as whole 4-byte loads.
    """
    if not full and _SOCK_FULL_ONLY[0] <= off < _SOCK_FULL_ONLY[1]:
        return False
    if off < 0 or off >= SOCK_SIZE or size not in (1, 2, 4, 8) or off % size:
        return False
    if off in _SOCK_NARROW_AT or any(lo <= off < hi for lo, hi in _SOCK_NARROW_IN):
        return (off & 3) + size <= 4
    if 48 <= off < 50:  # dst_port
        field = 4 if size == 4 else 2
        return (off & (field - 1)) + size <= field
    if 50 <= off < 52:
        return False
    return size == 4


class _Fail(Exception):
    pass


class _Formatted(Exception):
    """A failure message already formatted (from a sub-assertion)."""


class Checker:
    """Checks one assertion in one state; `run` gives the failure text or None."""

    def __init__(self, state: State, assertion: Assertion, opts: AnalysisOptions) -> None:
        self.state = state
        self.assertion = assertion
        self.opts = opts

    def run(self) -> str | None:
        """The failure message, or None when the assertion holds."""
        if self.state.is_bottom():
            return None
        try:
            method = getattr(self, "_" + type(self.assertion).__name__)
            method(self.assertion)
        except _Fail as e:
            return f"{e} ({self.assertion})"
        except _Formatted as e:
            return str(e)
        return None

    # -- primitives ------------------------------------------------------------------

    def fail(self, msg: str) -> None:
        raise _Fail(msg)

    def types(self, reg: Reg) -> frozenset[str]:
        return self.state.reg_types(reg.v)

    def require_le(
        self, terms: dict[str, int], const: int, bound_terms: dict[str, int], bound: int, msg: str
    ) -> None:
        """Require `sum(terms) + const <= sum(bound_terms) + bound`."""
        combined = dict(terms)
        for v, a in bound_terms.items():
            combined[v] = combined.get(v, 0) - a
        combined = {v: a for v, a in combined.items() if a}
        if not self.state.zone.entails_linear_le(combined, bound - const):
            self.fail(msg)

    # -- assertions -------------------------------------------------------------------

    def _TypeConstraint(self, a: TypeConstraint) -> None:
        if not self.types(a.reg) <= a.group.types:
            self.fail("Invalid type")

    def _FuncConstraint(self, a: FuncConstraint) -> None:
        from ..platform.helper_prototypes import prototype

        value = self.state.eval(var(reg_owner(a.reg.v), "uvalue")).singleton()
        if value is None or not -(1 << 31) <= value < (1 << 31):
            self.fail("callx helper function id is not a valid singleton")
        if prototype(value) is None:
            self.fail(f"invalid helper function id {value}")
        for sub in helper_assertions(value, self.opts.privileged):
            msg = Checker(self.state, sub, self.opts).run()
            if msg is not None:
                raise _Formatted(msg)

    def _ValidGlobalCall(self, a: ValidGlobalCall) -> None:
        """The kernel's btf_check_subprog_call: each argument as the prototype says."""
        sig = a.signature
        prefix = f"Caller passes invalid args into func#{sig.index} ('{sig.name}')"
        if sig.error is not None:
            raise _Formatted(f"{prefix}: {sig.error}")
        for i, arg in enumerate(sig.args):
            for sub in global_arg_assertions(Reg(i + 1), arg):
                msg = Checker(self.state, sub, self.opts).run()
                if msg is not None:
                    raise _Formatted(f"{prefix}: arg#{i}: {msg}")

    def _ScalarReturn(self, a: ScalarReturn) -> None:
        if not self.types(Reg(0)) <= {"number"}:
            raise _Formatted(
                f"At subprogram exit the register R0 is not a scalar value ({TypeConstraint(Reg(0), TypeGroup.number)})"
            )

    def _Addable(self, a: Addable) -> None:
        ptr_types = self.types(a.ptr)
        pointers = TypeGroup.pointer.types | {"alloc_mem"}
        if ptr_types & pointers and not self.types(a.num) <= {"number"}:
            self.fail("Only numbers can be added to pointers")

    def _ValidStore(self, a: ValidStore) -> None:
        if self.types(a.mem) != {"stack"} and not self.types(a.val) <= {"number"}:
            self.fail("Only numbers can be stored to externally-visible regions")

    def _ValidDivisor(self, a: ValidDivisor) -> None:
        if not self.types(a.reg) <= {"number"}:
            self.fail("Only numbers can be used as divisors")
        if self.opts.allow_division_by_zero:
            return
        owner = reg_owner(a.reg.v)
        si, ui = self.state.eval(var(owner, "svalue")), self.state.eval(var(owner, "uvalue"))
        if a.is64:
            iv = si if a.is_signed else ui
            if 0 in iv:
                self.fail("Possible division by zero")
        elif 0 in ui.truncate_unsigned(32) and 0 in si.truncate_signed(32):
            self.fail("Possible division by zero")

    def _ValidSize(self, a: ValidSize) -> None:
        si = self.state.eval(var(reg_owner(a.reg.v), "svalue"))
        if si.lo < (0 if a.can_be_zero else 1):
            self.fail("Invalid size")

    def _ZeroCtxOffset(self, a: ZeroCtxOffset) -> None:
        owner = reg_owner(a.reg.v)
        if a.or_null and "number" in self.types(a.reg):
            # A context or NULL (ARG_PTR_TO_CTX_OR_NULL): a number must be the constant 0.
            # PREVAIL lets a register that is a number on one path and the context on
            # another through; the state does not split per type, so neither does this.
            zero = self.state.eval(var(owner, "uvalue")).singleton() == 0
            if self.types(a.reg) != {"number"} or not zero:
                self.fail("Nonzero context offset")
            return
        off = self.state.eval(var(owner, "ctx_offset"))
        if off.singleton() != 0:
            self.fail("Nonzero context offset")

    def _ZeroAllocOffset(self, a: ZeroAllocOffset) -> None:
        off = self.state.eval(var(reg_owner(a.reg.v), "alloc_mem_offset"))
        if off.singleton() != 0:
            self.fail("Released memory must be passed at offset 0")

    def _ValidSocket(self, a: ValidSocket) -> None:
        owner = reg_owner(a.reg.v)
        if self.state.eval(var(owner, "uvalue")).lo < 1:
            self.fail("Possibly NULL socket passed to a helper (check the lookup's result)")
        if self.state.eval(var(owner, "socket_offset")).singleton() != 0:
            self.fail("Nonzero socket offset")

    def _BoundedLoopCount(self, a: BoundedLoopCount) -> None:
        limit = self.opts.loop_count_limit
        if self.state.eval(f"pc[{a.name}]").hi > limit:
            raise _Formatted(f"Loop counter is too large (pc[{a.name}] < {limit})")

    def _Comparable(self, a: Comparable) -> None:
        t1, t2 = self.types(a.r1), self.types(a.r2)
        same = self.state.types.same(reg_owner(a.r1.v), reg_owner(a.r2.v))
        if (t1 == t2 and len(t1) == 1) or same:
            rest = t1 - {"number"}
            if rest and not (rest <= TypeGroup.singleton_ptr.types or rest <= {"map_fd"}):
                self.fail("Cannot subtract pointers to non-singleton regions")
            self._ValidAccess(ValidAccess(a.r1))
            self._ValidAccess(ValidAccess(a.r2))
        elif t2 != {"number"}:
            self.fail("Cannot subtract pointers to different regions")

    def _ValidMapKeyValue(self, a: ValidMapKeyValue) -> None:
        fds = self.state.eval(var(reg_owner(a.map_fd_reg.v), "map_fd"))
        candidates = self.opts.maps_in(
            fds.lo if fds.lb_finite() else None, fds.hi if fds.ub_finite() else None
        )
        # The key (value) must be readable for whichever map the fd is.
        width = max(d.key_size if a.key else d.value_size for d in candidates)
        owner = reg_owner(a.access_reg.v)
        for t in self.types(a.access_reg):
            if t == "stack" and self.opts.allow_uninit_stack:
                # root: any bytes will do as a key or value, but inside the stack
                read = ValidAccess(a.access_reg, 0, Imm(width), False, AccessType.read)
                self._region(read, owner, "stack", {}, width, False)
            elif t == "stack":
                offs = self.state.eval(var(owner, "stack_offset"))
                lo = offs.lo if offs.lb_finite() else None
                ok = offs.is_finite() and all(
                    self.state.stack.all_numeric(o, width) for o in range(offs.lo, offs.hi + 1)
                )
                if not ok and not self.opts.allow_uninit_stack:
                    hi = offs.hi + width if offs.ub_finite() else None
                    lo_s = "-oo" if lo is None else str(lo)
                    hi_s = "oo" if hi is None else str(hi)
                    self.fail(f"Illegal map update with a non-numerical value [{lo_s}-{hi_s})")
            elif t == "packet":
                off = var(owner, "packet_offset")
                self.require_le({}, 0, {off: 1}, 0, "Lower bound must be at least meta_offset")
                self.require_le(
                    {off: 1},
                    width,
                    {"packet_size": 1},
                    0,
                    "Upper bound must be at most packet_size",
                )
            elif t == "shared":
                off = var(owner, "shared_offset")
                size = var(owner, "shared_region_size")
                self.require_le({}, 0, {off: 1}, 0, "Lower bound must be at least 0")
                self.require_le(
                    {off: 1}, width, {size: 1}, 0, f"Upper bound must be at most {size}"
                )
                if self.state.eval(var(owner, "uvalue")).lo < 1:
                    self.fail("Possible null access")
            else:
                self.fail("Only stack, packet, or shared can be used as a parameter")

    def _ValidAccess(self, a: ValidAccess) -> None:
        owner = reg_owner(a.reg.v)
        comparison = a.width == Imm(0)
        if isinstance(a.width, Imm):
            wterms: dict[str, int] = {}
            wconst = a.width.v
        else:
            wterms = {var(reg_owner(a.width.v), "svalue"): 1}
            wconst = 0
        for t in sorted(self.types(a.reg)):
            if t in ("stack", "ctx", "packet", "shared", "alloc_mem"):
                self._region(a, owner, t, wterms, wconst, comparison)
            elif t == "number":
                if not comparison:
                    if a.or_null:
                        if self.state.eval(var(owner, "svalue")).singleton() != 0:
                            self.fail("Non-null number")
                    else:
                        self.fail("Only pointers can be dereferenced")
            elif t in ("map_fd", "map_fd_programs"):
                if not comparison:
                    self.fail("FDs cannot be dereferenced directly")
            elif t == "func":
                if not comparison:
                    self.fail("Function pointers cannot be dereferenced")
            elif t == "socket":
                if not comparison:
                    self._socket(a, owner, wconst if not wterms else None)
            else:
                self.fail("Invalid type")

    def _region(
        self,
        a: ValidAccess,
        owner: str,
        t: str,
        wterms: dict[str, int],
        wconst: int,
        comparison: bool,
    ) -> None:
        off = var(owner, f"{t}_offset")
        lb = ({off: 1}, a.offset)
        ub_terms = {off: 1, **wterms}
        ub_const = a.offset + wconst
        if t == "stack":
            r10 = var("r10", "stack_offset")
            self.require_le(
                {r10: 1},
                -SUBPROGRAM_STACK_SIZE,
                *lb,
                "Lower bound must be at least r10.stack_offset - subprogram_stack_size",
            )
            # Frames grow down from the entry frame's r10 (offset 512): nothing at or above
            # it is stack, while a callee may still reach its callers' frames.
            self.require_le(
                ub_terms,
                ub_const,
                {},
                SUBPROGRAM_STACK_SIZE,
                "Upper bound must be at most total_stack_size",
            )
            if a.access_type.value == "read" and not self.opts.allow_uninit_stack:
                lo = self.state.zone.eval_linear(*lb)
                hi = self.state.zone.eval_linear(ub_terms, ub_const)
                if not wterms and self._spill_read(lo, hi):
                    return  # an immediate width: a load (helpers pass their sizes in registers)
                if not (lo.is_finite() and hi.is_finite()) or not self.state.stack.all_numeric(
                    lo.lo, hi.hi - lo.lo
                ):
                    if a.offset < 0:
                        self.fail("Stack content is not numeric")
                    size = var(owner, "stack_numeric_size")
                    self.require_le(
                        wterms, wconst, {size: 1}, -a.offset, "Stack content is not numeric"
                    )
        elif t == "ctx":
            size = self.opts.ctx.size
            self.require_le({}, 0, *lb, "Lower bound must be at least 0")
            self.require_le(ub_terms, ub_const, {}, size, f"Upper bound must be at most {size}")
            if a.access_type.value == "write" and self.opts.ctx.end >= 0:
                self._ctx_write(a, off, wconst)
            if self.opts.linux_ctx_fields and not comparison and not wterms:
                self._ctx_field(a, off, wconst)
        elif t == "packet":
            self.require_le({"meta_offset": 1}, 0, *lb, "Lower bound must be at least meta_offset")
            if comparison:
                # The kernel compares packet pointers at any sane offset (below 2^29,
                # BPF_MAX_VAR_OFF) and learns nothing from one beyond MAX_PACKET_OFF;
                # PREVAIL wants the offset within the largest packet.
                limit = MAX_VAR_OFF if self.opts.linux_rules else self.opts.max_packet_size
                self.require_le(
                    ub_terms, ub_const, {}, limit, f"Upper bound must be at most {limit}"
                )
            else:
                self.require_le(
                    ub_terms,
                    ub_const,
                    {"packet_size": 1},
                    0,
                    "Upper bound must be at most packet_size",
                )
        else:
            size = var(owner, "alloc_mem_size" if t == "alloc_mem" else "shared_region_size")
            self.require_le({}, 0, *lb, "Lower bound must be at least 0")
            self.require_le(ub_terms, ub_const, {size: 1}, 0, f"Upper bound must be at most {size}")
            if not comparison and not a.or_null:
                if self.state.eval(var(owner, "uvalue")).lo < 1:
                    self.fail("Possible null access")

    def _socket(self, a: ValidAccess, owner: str, width: int | None) -> None:
        """A load through a socket: a field of struct bpf_sock the socket kind may read.

        The kernel's check_sock_access: no writes ("cannot write into sock"),
        the pointer checked for NULL, and bpf_sock_is_valid_access (a full
        socket) or bpf_sock_common_is_valid_access (sock_common: not
        type, protocol, mark or priority). A socket that may be either kind
        is held to the sock_common rules.
        """
        if a.access_type.value == "write":
            self.fail("Cannot write into a socket")
        if self.state.eval(var(owner, "uvalue")).lo < 1:
            self.fail("Possible null access")
        at = self.state.eval(var(owner, "socket_offset")).singleton()
        full = self.state.eval(var(owner, "socket_full")).lo >= 1
        if at is None or width is None or not sock_access_ok(at + a.offset, width, full):
            self.fail("Invalid socket access")

    def _spill_read(self, lo: Interval, hi: Interval) -> bool:
        """A read of exactly one stored stack cell at a known offset (load path).

        The kernel reloads a spilled pointer through any stack pointer, also
        one into a caller's frame (a callback's context); PREVAIL only
        through r10. The load copies the cell, as a reload through r10 does.
        """
        at = lo.singleton()
        end = hi.singleton()
        if not self.opts.linux_rules or at is None or end is None:
            return False
        return (at, end - at) in self.state.stack.cells

    def _ctx_write(self, a: ValidAccess, off: str, width: int) -> None:
        desc = self.opts.ctx
        field_width = desc.end - desc.data
        lo = self.state.eval(off) + a.offset
        hi = lo + width
        for start in (desc.data, desc.end, desc.meta):
            if start < 0:
                continue
            if lo.lo < start + field_width and hi.hi > start:
                self.fail("Cannot write to context pointer field")

    def _ctx_field(self, a: ValidAccess, off: str, width: int) -> None:
        """The Linux rules of a context load/store (pybpf.platform.contexts, as the runtime).

        The kernel rewrites context accesses field by field: the context
        register must be unmodified ("dereference of modified ctx ptr"), the
        access must hit one field the program type may read (write), with a
        width it allows, aligned, and pointer fields (data, data_end,
        data_meta) only whole.
        """
        prog_type = self.opts.linux_program_type or self.opts.program_type
        if prog_type == "cgroup_sock_addr" and self.opts.linux_rules:
            if self.state.eval(off).singleton() != 0:
                self.fail("Dereference of modified context pointer")
            write = a.access_type.value == "write"
            attach = self.opts.linux_attach_type
            error = sock_addr_access_error(a.offset, width, write, attach)
            if error is not None:
                self.fail(error)
            return
        table = linux_context_access(prog_type)
        if table is None or table.layout.size != self.opts.ctx.size:
            return
        if self.state.eval(off).singleton() != 0:
            self.fail("Dereference of modified context pointer")
        try:
            table.check(a.offset, width, write=a.access_type.value == "write")
        except ProgramFault as e:
            self.fail(f"Invalid context access: {e}")


@functools.cache
def linux_context_access(prog_type: str | None) -> ContextAccess | None:
    """pybpf's context field table for PREVAIL program type `prog_type` (None: none)."""
    if prog_type is None:
        return None
    return context_access(prog_type)


def global_arg_assertions(reg: Reg, arg: GlobalArg) -> list[Assertion]:
    """What argument `reg` must be for a global function's parameter `arg`.

    A memory parameter takes `size` bytes the callee may read and write, or
    NULL; a pointer that may be NULL is fine too (check_mem_reg checks it as
    not NULL).
    """
    if arg.kind == GlobalArgKind.SCALAR:
        return [TypeConstraint(reg, TypeGroup.number)]
    if arg.kind == GlobalArgKind.CTX:
        return [TypeConstraint(reg, TypeGroup.ctx), ZeroCtxOffset(reg)]
    width = Imm(arg.size)
    return [
        TypeConstraint(reg, TypeGroup.mem_or_num_linux),
        ValidAccess(reg, 0, width, True, AccessType.read),
        ValidAccess(reg, 0, width, True, AccessType.write),
    ]


def check(state: State, assertion: Assertion, opts: AnalysisOptions) -> str | None:
    """The reason `assertion` may not hold in `state`, or None."""
    return Checker(state, assertion, opts).run()


def interval_of(state: State, name: str) -> Interval:
    """Bounds of a variable (for reports)."""
    return state.eval(name)
