"""Assertions: what must hold before an instruction runs (PREVAIL's `ir/assertions.cpp`).

One frozen dataclass per kind of assertion; `explicate(insn)` lists those
of an IR instruction, `checks.py` decides them. The `__str__` of every
assertion is PREVAIL's text, since expected messages quote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..platform.helper_ids import HelperId
from .global_functions import GlobalSignature
from .ir import (
    STACK_SIZE,
    Assume,
    Atomic,
    Bin,
    BinOp,
    Call,
    CallLocal,
    Callx,
    Condition,
    CondOp,
    Exit,
    Imm,
    IncrementLoopCounter,
    IrInstruction,
    Jmp,
    Mem,
    Packet,
    Reg,
    Un,
    Value,
)

# ---------------------------------------------------------------- assertions


class TypeGroup(Enum):
    """Named sets of types, with PREVAIL's printed form."""

    number = "number"
    map_fd = "map_fd"
    map_fd_programs = "map_fd_programs"
    ctx = "ctx"
    packet = "packet"
    stack = "stack"
    shared = "shared"
    func = "func"
    ctx_or_num = "{number, ctx}"
    stack_or_num = "{number, stack}"
    mem = "{stack, packet, shared}"
    mem_or_num = "{number, stack, packet, shared}"
    dereferenceable = "{ctx, stack, packet, shared, socket, alloc_mem}"
    pointer = "{ctx, stack, packet, shared}"
    ptr_or_num = "{number, ctx, stack, packet, shared}"
    singleton_ptr = "{ctx, stack, packet}"
    alloc_mem = "alloc_mem"
    socket = "socket"
    # The load path's groups (`for_linux`): the kernel's sized memory (ring-buffer
    # records) takes pointer arithmetic and goes to helpers as memory.
    mem_linux = "{stack, packet, shared, alloc_mem}"
    mem_or_num_linux = "{number, stack, packet, shared, alloc_mem}"
    ptr_or_num_linux = "{number, ctx, stack, packet, shared, alloc_mem}"

    @property
    def types(self) -> frozenset[str]:
        """The type tags of this group."""
        return frozenset(self.value.strip("{}").split(", "))

    def __str__(self) -> str:
        return self.value


class AccessType(Enum):
    """Direction of a memory access."""

    compare = "compare"
    read = "read"
    write = "write"


def _type_reg(reg: Reg) -> str:
    return f"{reg}.type"


@dataclass(frozen=True, slots=True)
class TypeConstraint:
    """`reg`'s type is in `group`."""

    reg: Reg
    group: TypeGroup

    def __str__(self) -> str:
        op = "in" if self.group.value.startswith("{") else "=="
        return f"{_type_reg(self.reg)} {op} {self.group}"


@dataclass(frozen=True, slots=True)
class ValidAccess:
    """`reg + offset` points to `width` accessible bytes (0: only comparable)."""

    reg: Reg
    offset: int = 0
    width: Value = Imm(0)
    or_null: bool = False
    access_type: AccessType = AccessType.compare

    def __str__(self) -> str:
        s = ""
        if self.or_null:
            s = f"({TypeConstraint(self.reg, TypeGroup.number)} and {self.reg}.value == 0) or "
        off = f"+{self.offset}" if self.offset > 0 else (str(self.offset) if self.offset else "")
        s += f"valid_access({self.reg}.offset{off}"
        if self.width == Imm(0):
            return s + ") for comparison/subtraction"
        kind = "read" if self.access_type == AccessType.read else "write"
        return s + f", width={self.width}) for {kind}"


@dataclass(frozen=True, slots=True)
class Comparable:
    """`r1` and `r2` may be compared or subtracted."""

    r1: Reg
    r2: Reg
    or_r2_is_number: bool = False

    def __str__(self) -> str:
        s = f"{TypeConstraint(self.r2, TypeGroup.number)} or " if self.or_r2_is_number else ""
        return s + f"{_type_reg(self.r1)} == {_type_reg(self.r2)} in {TypeGroup.singleton_ptr}"


@dataclass(frozen=True, slots=True)
class Addable:
    """When `ptr` is a pointer, `num` is a number."""

    ptr: Reg
    num: Reg

    def __str__(self) -> str:
        return (
            f"{TypeConstraint(self.ptr, TypeGroup.pointer)} -> "
            f"{TypeConstraint(self.num, TypeGroup.number)}"
        )


@dataclass(frozen=True, slots=True)
class ValidDivisor:
    """`reg` is a number (and non-zero unless division by zero is allowed)."""

    reg: Reg
    is_signed: bool
    is64: bool

    def __str__(self) -> str:
        return f"{'r' if self.is64 else 'w'}{self.reg.v} != 0"


@dataclass(frozen=True, slots=True)
class ValidStore:
    """Only numbers are stored outside the stack."""

    mem: Reg
    val: Reg

    def __str__(self) -> str:
        return f"{self.mem}.type != stack -> {TypeConstraint(self.val, TypeGroup.number)}"


@dataclass(frozen=True, slots=True)
class ValidSize:
    """A size argument is positive (or zero when allowed)."""

    reg: Reg
    can_be_zero: bool

    def __str__(self) -> str:
        return f"{self.reg}.value {'>=' if self.can_be_zero else '>'} 0"


@dataclass(frozen=True, slots=True)
class ValidMapKeyValue:
    """`access_reg` points to key_size (or value_size) bytes of `map_fd_reg`'s map."""

    access_reg: Reg
    map_fd_reg: Reg
    key: bool

    def __str__(self) -> str:
        what = "key_size" if self.key else "value_size"
        return f"within({self.access_reg}:{what}({self.map_fd_reg}))"


@dataclass(frozen=True, slots=True)
class ZeroCtxOffset:
    """A context pointer passed to a helper has offset 0."""

    reg: Reg
    or_null: bool = False

    def __str__(self) -> str:
        return f"{self.reg}.ctx_offset == 0"


@dataclass(frozen=True, slots=True)
class ZeroAllocOffset:
    """A ring-buffer record released by submit/discard is passed at offset 0."""

    reg: Reg

    def __str__(self) -> str:
        return f"{self.reg}.alloc_mem_offset == 0"


@dataclass(frozen=True, slots=True)
class ValidSocket:
    """A socket passed to a helper (bpf_sk_release, …) is not NULL and at offset 0."""

    reg: Reg

    def __str__(self) -> str:
        return f"{self.reg}.socket_offset == 0 and {self.reg} != 0"


@dataclass(frozen=True, slots=True)
class FuncConstraint:
    """`reg` holds a valid helper id (callx)."""

    reg: Reg

    def __str__(self) -> str:
        return f"{_type_reg(self.reg)} is helper"


@dataclass(frozen=True, slots=True)
class BoundedLoopCount:
    """The loop counter of loop head `name` stays below `LIMIT`
    (`AnalysisOptions.loop_count_limit` when checked)."""

    name: int | str
    LIMIT = 100000

    def __str__(self) -> str:
        return f"pc[{self.name}] < {self.LIMIT}"


@dataclass(frozen=True, slots=True)
class ValidGlobalCall:
    """r1-r5 match the prototype of the global function called (global_functions.py)."""

    signature: GlobalSignature

    def __str__(self) -> str:
        return f"arguments of {self.signature.name}() match its prototype"


@dataclass(frozen=True, slots=True)
class ScalarReturn:
    """A global function returns a number in r0."""

    def __str__(self) -> str:
        return "r0.type == number"


Assertion = (
    TypeConstraint
    | ValidAccess
    | Comparable
    | Addable
    | ValidDivisor
    | ValidStore
    | ValidSize
    | ValidMapKeyValue
    | ZeroCtxOffset
    | ZeroAllocOffset
    | ValidSocket
    | FuncConstraint
    | BoundedLoopCount
    | ValidGlobalCall
    | ScalarReturn
)

# ---------------------------------------------------------------- explicate


def _explicate_cond(cond: Condition) -> list[Assertion]:
    res: list[Assertion] = []
    if isinstance(cond.right, Imm):
        if cond.right.v != 0:
            res.append(TypeConstraint(cond.left, TypeGroup.number))
        else:
            signed = cond.op in (CondOp.SLT, CondOp.SLE, CondOp.SGT, CondOp.SGE)
            if signed or not cond.is64:
                res.append(TypeConstraint(cond.left, TypeGroup.number))
            res.append(ValidAccess(cond.left))
        return res
    res.append(ValidAccess(cond.left))
    res.append(ValidAccess(cond.right))
    if cond.op not in (CondOp.EQ, CondOp.NE):
        res.append(TypeConstraint(cond.left, TypeGroup.ptr_or_num))
    res.append(Comparable(cond.left, cond.right, False))
    return res


def helper_assertions(func: int, privileged: bool = False) -> list[Assertion]:
    """What a helper's prototype requires of r1-r5 (unknown helpers: nothing).

    `privileged` (PREVAIL's `is_privileged` program types): an ANYTHING
    argument may be a pointer (a pointer leak, which the kernel allows such
    loaders; no memory is reached through it, the helper takes a value;
    but probe_write_user's destination stays a number).
    """
    from ..platform.helper_prototypes import ArgKind as A
    from ..platform.helper_prototypes import prototype

    proto = prototype(func)
    if proto is None:
        return []
    singles: list[Assertion] = []
    pairs: list[Assertion] = []
    map_fd: Reg | None = None
    args = list(proto.args[:5])
    i = 0
    while i < len(args):
        kind, reg = args[i], Reg(i + 1)
        nxt = args[i + 1] if i + 1 < len(args) else None
        if kind in (
            A.PTR_TO_MEM,
            A.PTR_TO_MEM_OR_NULL,
            A.PTR_TO_UNINIT_MEM,
            A.PTR_TO_UNINIT_MEM_OR_NULL,
        ) and nxt in (
            A.CONST_SIZE,
            A.CONST_SIZE_OR_ZERO,
        ):
            size = Reg(i + 2)
            or_null = kind in (A.PTR_TO_MEM_OR_NULL, A.PTR_TO_UNINIT_MEM_OR_NULL)
            access = (
                AccessType.read
                if kind in (A.PTR_TO_MEM, A.PTR_TO_MEM_OR_NULL)
                else AccessType.write
            )
            pairs += [
                TypeConstraint(size, TypeGroup.number),
                ValidSize(size, nxt == A.CONST_SIZE_OR_ZERO),
                TypeConstraint(reg, TypeGroup.mem_or_num if or_null else TypeGroup.mem),
                ValidAccess(reg, 0, size, or_null, access),
            ]
            i += 2
            continue
        if kind == A.ANYTHING:
            # probe_write_user writes where its ANYTHING argument points: never a pointer
            # the analysis tracks (the kernel's copy_to_user never reaches BPF memory).
            if not privileged or proto.id == HelperId.PROBE_WRITE_USER:
                singles.append(TypeConstraint(reg, TypeGroup.number))
        elif kind == A.CONST_MAP_PTR and proto.id == HelperId.TAIL_CALL:
            singles.append(TypeConstraint(reg, TypeGroup.map_fd_programs))
        elif kind == A.CONST_MAP_PTR:
            singles.append(TypeConstraint(reg, TypeGroup.map_fd))
            map_fd = reg
        elif kind in (A.PTR_TO_MAP_KEY, A.PTR_TO_MAP_VALUE, A.PTR_TO_UNINIT_MAP_VALUE):
            singles.append(TypeConstraint(reg, TypeGroup.mem))
            if map_fd is not None:
                singles.append(ValidMapKeyValue(reg, map_fd, kind == A.PTR_TO_MAP_KEY))
        elif kind == A.PTR_TO_STACK_OR_NULL:
            singles.append(TypeConstraint(reg, TypeGroup.stack_or_num))
        elif kind == A.PTR_TO_FUNC:
            singles.append(TypeConstraint(reg, TypeGroup.func))
        elif kind == A.PTR_TO_ALLOC_MEM:
            # ringbuf submit/discard release a reservation: it must be one
            # (not a number, not possibly null), as the kernel's
            # ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE requires. A 1-byte read
            # access at offset 0 checks the type, the bounds and non-null.
            singles += [
                TypeConstraint(reg, TypeGroup.alloc_mem),
                ValidAccess(reg, 0, Imm(1), False, AccessType.read),
            ]
        elif kind == A.PTR_TO_SOCK_COMMON:
            # The kernel's ARG_PTR_TO_BTF_ID_SOCK_COMMON: a socket or its sock_common
            # part, checked for NULL (a NULL-able lookup result is refused).
            singles += [TypeConstraint(reg, TypeGroup.socket), ValidSocket(reg)]
        elif kind == A.PTR_TO_SPIN_LOCK:
            # The kernel also wants the lock at the BTF offset of the value's
            # struct bpf_spin_lock and tracks that it is held; here: 4 writable
            # bytes of a map value.
            singles += [
                TypeConstraint(reg, TypeGroup.shared),
                ValidAccess(reg, 0, Imm(4), False, AccessType.write),
            ]
        elif kind == A.PTR_TO_CTX:
            singles += [TypeConstraint(reg, TypeGroup.ctx), ZeroCtxOffset(reg)]
        elif kind == A.PTR_TO_CTX_OR_NULL:
            singles += [TypeConstraint(reg, TypeGroup.ctx_or_num), ZeroCtxOffset(reg, True)]
        elif kind in (A.CONST_SIZE, A.CONST_SIZE_OR_ZERO, A.CONST_ALLOC_SIZE_OR_ZERO):
            singles += [
                TypeConstraint(reg, TypeGroup.number),
                ValidSize(reg, kind != A.CONST_SIZE),
            ]
        i += 1
    return singles + pairs


def builtin_assertions(func: int) -> list[Assertion]:
    """What a compiler builtin (memset, memcpy, …) requires of r1-r3.

    PREVAIL's contract (`get_builtin_call_linux`): numbers where asked,
    then for each pointer the size pair's assertions, as for a helper's
    (pointer, size) arguments: the size a number > 0, the pointer into
    stack, packet or shared memory with that many accessible bytes.
    """
    from ..platform.helper_prototypes import builtin_prototype

    proto = builtin_prototype(func)
    if proto is None:
        return []
    res: list[Assertion] = [TypeConstraint(Reg(r), TypeGroup.number) for r in proto.numbers]
    size = Reg(proto.size)
    for regs, access in ((proto.writes, AccessType.write), (proto.reads, AccessType.read)):
        for r in regs:
            res += [
                TypeConstraint(size, TypeGroup.number),
                ValidSize(size, False),
                TypeConstraint(Reg(r), TypeGroup.mem),
                ValidAccess(Reg(r), 0, size, False, access),
            ]
    return res


_LINUX_GROUPS = {
    TypeGroup.mem: TypeGroup.mem_linux,
    TypeGroup.mem_or_num: TypeGroup.mem_or_num_linux,
    TypeGroup.ptr_or_num: TypeGroup.ptr_or_num_linux,
}


def for_linux(assertions: list[Assertion]) -> list[Assertion]:
    """`assertions` as the Linux kernel has them (the load path).

    The kernel's sized memory (PTR_TO_MEM: ring-buffer records) takes
    pointer arithmetic within its size and is memory for helpers, and a
    record is released (submit/discard) only at its start. PREVAIL has no
    such pointers, so its groups stay as they print.
    """
    out: list[Assertion] = []
    for a in assertions:
        if isinstance(a, TypeConstraint) and a.group in _LINUX_GROUPS:
            a = TypeConstraint(a.reg, _LINUX_GROUPS[a.group])
        out.append(a)
        if isinstance(a, TypeConstraint) and a.group == TypeGroup.alloc_mem:
            out.append(ZeroAllocOffset(a.reg))
    return out


def explicate(insn: IrInstruction, privileged: bool = False) -> list[Assertion]:
    """The assertions that must hold before `insn` (PREVAIL's `get_assertions`).

    `privileged`: the program type is privileged (`AnalysisOptions.privileged`).
    """
    match insn:
        case IncrementLoopCounter():
            return [BoundedLoopCount(insn.name)]
        case Exit():
            if insn.signature is not None:
                return [ScalarReturn()]
            return [] if insn.frame else [TypeConstraint(Reg(0), TypeGroup.number)]
        case CallLocal() if insn.signature is not None:
            return [ValidGlobalCall(insn.signature)]
        case Call():
            if insn.builtin:
                return builtin_assertions(insn.func)
            return helper_assertions(insn.func, privileged)
        case Callx():
            return [TypeConstraint(insn.func, TypeGroup.number), FuncConstraint(insn.func)]
        case Packet():
            return [TypeConstraint(Reg(6), TypeGroup.ctx), ZeroCtxOffset(Reg(6))]
        case Assume():
            return [] if insn.is_implicit else _explicate_cond(insn.cond)
        case Jmp():
            return _explicate_cond(insn.cond) if insn.cond else []
        case Mem():
            return _explicate_mem(insn, privileged)
        case Atomic():
            a = insn.access
            return [
                TypeConstraint(insn.valreg, TypeGroup.number),
                TypeConstraint(a.basereg, TypeGroup.dereferenceable),
                ValidAccess(a.basereg, a.offset, Imm(a.width), False, AccessType.write),
            ]
        case Un():
            return [TypeConstraint(insn.dst, TypeGroup.number)]
        case Bin():
            return _explicate_bin(insn)
    return []


def _explicate_mem(insn: Mem, privileged: bool = False) -> list[Assertion]:
    a = insn.access
    kind = AccessType.read if insn.is_load else AccessType.write
    if a.basereg.v == 10:
        if a.offset < -STACK_SIZE or a.offset + a.width > 0:
            return [ValidAccess(a.basereg, a.offset, Imm(a.width), False, kind)]
        return []
    res: list[Assertion] = [
        TypeConstraint(a.basereg, TypeGroup.dereferenceable),
        ValidAccess(a.basereg, a.offset, Imm(a.width), False, kind),
    ]
    # Privileged program types may store pointers anywhere (PREVAIL; the kernel's
    # allow_ptr_leaks): what is stored outside the stack is only ever read as a number.
    if not insn.is_load and isinstance(insn.value, Reg) and not privileged:
        if a.width != 8:
            res.append(TypeConstraint(insn.value, TypeGroup.number))
        else:
            res.append(ValidStore(a.basereg, insn.value))
    return res


def _explicate_bin(insn: Bin) -> list[Assertion]:
    src = insn.v if isinstance(insn.v, Reg) else None
    op = insn.op
    if op == BinOp.MOV:
        return [TypeConstraint(src, TypeGroup.number)] if src and not insn.is64 else []
    if op in (BinOp.MOVSX8, BinOp.MOVSX16, BinOp.MOVSX32):
        return [TypeConstraint(src, TypeGroup.number)] if src else []
    if op == BinOp.ADD:
        if src:
            return [
                TypeConstraint(insn.dst, TypeGroup.ptr_or_num),
                TypeConstraint(src, TypeGroup.ptr_or_num),
                Addable(src, insn.dst),
                Addable(insn.dst, src),
            ]
        return [TypeConstraint(insn.dst, TypeGroup.ptr_or_num)]
    if op == BinOp.SUB:
        if src:
            return [TypeConstraint(insn.dst, TypeGroup.ptr_or_num), Comparable(insn.dst, src, True)]
        return [TypeConstraint(insn.dst, TypeGroup.ptr_or_num)]
    if op in (BinOp.UDIV, BinOp.UMOD, BinOp.SDIV, BinOp.SMOD):
        res: list[Assertion] = [TypeConstraint(insn.dst, TypeGroup.number)]
        if src:
            signed = op in (BinOp.SDIV, BinOp.SMOD)
            res.append(ValidDivisor(src, signed, insn.is64))
        return res
    res = [TypeConstraint(insn.dst, TypeGroup.number)]
    if src:
        res.append(TypeConstraint(src, TypeGroup.number))
    return res
