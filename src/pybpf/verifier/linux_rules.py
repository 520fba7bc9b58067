"""The Linux kernel's rules that PREVAIL does not check, and facts the engines need.

Checked on the analysis' final invariants (`AnalysisOptions.linux_rules`,
on for the load path, off for the PREVAIL comparisons), each with the
kernel's reason in the message:

* the exit value of the entry function lies in the program type's range
  (`check_return_code`: cgroup programs return 0 or 1, …);
* no ringbuf reservation or socket (bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp)
  is outstanding at the entry function's exit or at a tail call
  ("Unreleased reference"); the references themselves are counted by the
  transfer functions (`memory.py`: `ref[pc]`, one variable per acquiring
  call, up at the reservation or lookup, down at submit/discard/sk_release
  and on the branch where the pointer is null);
* skb helpers only in `__sk_buff` programs, xdp helpers only in XDP
  (`helper_unavailable`, checked by `verify_program` before the analysis);
* helpers get maps of the types they accept, and maps reach only the
  helpers their type allows (`check_map_func_compatibility`);
* callbacks (bpf_loop, for_each_map_elem; analysed where the helper is
  called, cfg.py) return 0 or 1;
* a load or store through the context pointer is at a constant offset
  from an unmodified context pointer, the same instruction never accesses
  the context on one path and other memory on another ("same insn cannot
  be used with different pointers"), and atomics never touch the context.
* no reachable division or modulo by an immediate zero ("div by zero");
* no reachable shift by an immediate outside [0, width) ("invalid shift 64");
* stack accesses are aligned to their size, whatever the architecture
  (check_ptr_alignment is strict for the stack: "misaligned stack access
  off 0+0+-6 size 4"; other memory may be misaligned on x86-64). Checked
  where the offset is one constant; a variable stack offset would need the
  kernel's known bits (tnum) to tell;
* a subprogram never reads r6-r9 before writing them ("R6 !read_ok": a new
  frame has only r1-r5 and r10);
* a map argument is never a map of maps' lookup result not checked for NULL,
  and a ring buffer reservation has a constant size (check_func_arg);
* cgroup_skb (and the other read-only packet types) never store into the
  packet ("cannot write into packet");
* nothing writes a read-only map (`.rodata`: "write into map forbidden",
  frozen_maps.py);
* the map-type checks hold for every map a register may name, the maps a
  program loads with `lddw` in the register's range of map fds.

`context_facts` computes, whatever the options, what the JIT needs of
context accesses (`Report.context_accesses`, `Report.mixed_context_pcs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..platform import helper_availability
from ..platform.helper_ids import HelperId, helper_name
from ..platform.helper_prototypes import ArgKind, prototype
from ..platform.program_type_info import program_type_info
from ..platform.program_types import AttachType
from .cfg import (
    CODE_ADDR,
    MAX_CALL_STACK_FRAMES,
    Label,
    callback_target,
    function_starts,
    original_pc,
)
from .domains.interval import Interval
from .domains.stack import SUBPROGRAM_STACK_SIZE, cell_name
from .frozen_maps import readonly_write_error
from .ir import (
    Atomic,
    Bin,
    BinOp,
    Call,
    CallbackReturn,
    CallLocal,
    Exit,
    Imm,
    Jmp,
    LoadMapFd,
    LoadPseudo,
    Mem,
    Reg,
    Un,
)
from .memory import ref_var
from .options import AnalysisOptions
from .state import State, reg_owner, var

# -- exit values -------------------------------------------------------------------


def _packet_read_only(prog_type: str | None) -> bool:
    """Whether direct packet access of Linux type `prog_type` is read-only
    (`ProgramTypeInfo.packet_read_only`)."""
    try:
        return prog_type is not None and program_type_info(prog_type).packet_read_only
    except KeyError:
        return False


def exit_value_range(prog_type: str | None, attach: AttachType | None) -> tuple[int, int] | None:
    """The values a program of Linux type `prog_type` may return (None: any), from its
    record (`ProgramTypeInfo.exit_value_range`; the kernel's check_return_code)."""
    if prog_type is None:
        return None
    try:
        return program_type_info(prog_type).exit_value_range(attach)
    except KeyError:
        return None


# -- helpers per program type --------------------------------------------------------

#: Helpers that take a `struct __sk_buff` context, and those that take an `xdp_md`.
SKB_HELPERS = frozenset(
    {9, 10, 11, 13, 18, 19, 20, 21, 26, 29, 30, 31, 32, 33, 34, 38, 39, 40, 41, 43}
    | {48, 50, 68, 79, 83, 97, 135}
)
XDP_HELPERS = frozenset({44, 54, 65, 188, 189, 190})
#: Linux program types whose context is an `__sk_buff` (some skb helpers are refused to
#: some of them too; only the context kind is checked here).
SKB_TYPES = frozenset(
    {"socket_filter", "sched_cls", "sched_act", "cgroup_skb", "lwt_in", "lwt_out"}
    | {"lwt_xmit", "lwt_seg6local", "sk_skb", "sk_reuseport", "flow_dissector"}
)
#: Types whose helper tables (the kernel's *_func_proto) are known to have neither kind.
OTHER_TYPES = frozenset(
    {"kprobe", "tracepoint", "perf_event", "raw_tracepoint", "cgroup_sock", "sock_ops"}
    | {"cgroup_sock_addr", "cgroup_device", "sk_msg", "cgroup_sysctl", "cgroup_sockopt"}
    | {"tracing", "lsm", "sk_lookup", "syscall", "netfilter"}
)


def helper_unavailable(
    prog_type: str | None,
    func: int,
    attach: AttachType | None = None,
    sleepable: bool = False,
) -> str | None:
    """The kernel's refusal of helper `func` to Linux program type `prog_type`, or None.

    The kernel's func_proto tables per program type, attach type and
    sleepability (`platform.helper_availability`); for kinds the table
    does not know (fentry, LSM, …), only the context kind: skb helpers
    outside `__sk_buff` programs, xdp helpers outside XDP.
    """
    known = helper_availability.refused(prog_type, attach, sleepable, func)
    if known is not None:
        refused = known
    elif func in SKB_HELPERS:
        refused = prog_type == "xdp" or prog_type in OTHER_TYPES
    elif func in XDP_HELPERS:
        refused = prog_type in SKB_TYPES or prog_type in OTHER_TYPES
    else:
        return None
    if not refused:
        return None
    return f"program of this type cannot use helper {helper_name(func)}#{func}"


# -- map types of helpers ------------------------------------------------------------

# BPF_MAP_TYPE_* numbers (uapi/linux/bpf.h).
HASH, ARRAY, PROG_ARRAY, PERF_EVENT_ARRAY, PERCPU_HASH, PERCPU_ARRAY = 1, 2, 3, 4, 5, 6
STACK_TRACE, CGROUP_ARRAY, LRU_PERCPU_HASH = 7, 8, 10
ARRAY_OF_MAPS, HASH_OF_MAPS, DEVMAP, SOCKMAP, CPUMAP, XSKMAP, SOCKHASH = 12, 13, 14, 15, 16, 17, 18
CGROUP_STORAGE, REUSEPORT_SOCKARRAY, PERCPU_CGROUP_STORAGE, QUEUE, STACK = 19, 20, 21, 22, 23
SK_STORAGE, DEVMAP_HASH, RINGBUF, BLOOM_FILTER, USER_RINGBUF = 24, 25, 27, 30, 31

H = HelperId
_LOOKUP, _UPDATE, _DELETE = H.MAP_LOOKUP_ELEM, H.MAP_UPDATE_ELEM, H.MAP_DELETE_ELEM
_PERF = frozenset(
    {H.PERF_EVENT_READ, H.PERF_EVENT_OUTPUT, H.PERF_EVENT_READ_VALUE, H.SKB_OUTPUT, H.XDP_OUTPUT}
)
_RINGBUF = frozenset(
    {H.RINGBUF_OUTPUT, H.RINGBUF_RESERVE, H.RINGBUF_QUERY, H.RINGBUF_RESERVE_DYNPTR}
)
_UNDER_CGROUP = frozenset({H.SKB_UNDER_CGROUP, H.CURRENT_TASK_UNDER_CGROUP})
_REDIRECT = frozenset({H.REDIRECT_MAP, _LOOKUP})
_ELEMENTS = frozenset({_LOOKUP, _UPDATE, _DELETE})
_SOCKMAP = (
    frozenset({H.SK_REDIRECT_MAP, H.SOCK_MAP_UPDATE, H.MSG_REDIRECT_MAP, H.SK_SELECT_REUSEPORT})
    | _ELEMENTS
)
_SOCKHASH = (
    frozenset({H.SK_REDIRECT_HASH, H.SOCK_HASH_UPDATE, H.MSG_REDIRECT_HASH, H.SK_SELECT_REUSEPORT})
    | _ELEMENTS
)
_QUEUE = frozenset({H.MAP_PUSH_ELEM, H.MAP_POP_ELEM, H.MAP_PEEK_ELEM})

#: Map type → the only helpers it may be passed to (kernel: the map side of
#: check_map_func_compatibility; a type not listed goes to any helper).
MAP_HELPERS: Mapping[int, frozenset[int]] = {
    PROG_ARRAY: frozenset({H.TAIL_CALL}),
    PERF_EVENT_ARRAY: _PERF,
    RINGBUF: _RINGBUF,
    USER_RINGBUF: frozenset({H.USER_RINGBUF_DRAIN}),
    STACK_TRACE: frozenset({H.GET_STACKID}),
    CGROUP_ARRAY: _UNDER_CGROUP,
    CGROUP_STORAGE: frozenset({H.GET_LOCAL_STORAGE}),
    PERCPU_CGROUP_STORAGE: frozenset({H.GET_LOCAL_STORAGE}),
    DEVMAP: _REDIRECT,
    DEVMAP_HASH: _REDIRECT,
    CPUMAP: frozenset({H.REDIRECT_MAP}),
    XSKMAP: _REDIRECT,
    ARRAY_OF_MAPS: frozenset({_LOOKUP}),
    HASH_OF_MAPS: frozenset({_LOOKUP}),
    SOCKMAP: _SOCKMAP,
    SOCKHASH: _SOCKHASH,
    REUSEPORT_SOCKARRAY: frozenset({H.SK_SELECT_REUSEPORT}) | _ELEMENTS,
    QUEUE: _QUEUE,
    STACK: _QUEUE,
    BLOOM_FILTER: frozenset({H.MAP_PUSH_ELEM, H.MAP_PEEK_ELEM}),
    SK_STORAGE: frozenset({H.SK_STORAGE_GET, H.SK_STORAGE_DELETE}) | _ELEMENTS,
}

#: Helper → the map types it accepts (kernel: the helper side).
HELPER_MAPS: Mapping[int, frozenset[int]] = {
    H.TAIL_CALL: frozenset({PROG_ARRAY}),
    **dict.fromkeys(_PERF, frozenset({PERF_EVENT_ARRAY})),
    **dict.fromkeys(_RINGBUF, frozenset({RINGBUF})),
    H.USER_RINGBUF_DRAIN: frozenset({USER_RINGBUF}),
    H.GET_STACKID: frozenset({STACK_TRACE}),
    **dict.fromkeys(_UNDER_CGROUP, frozenset({CGROUP_ARRAY})),
    H.REDIRECT_MAP: frozenset({DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP}),
    H.SK_REDIRECT_MAP: frozenset({SOCKMAP}),
    H.SOCK_MAP_UPDATE: frozenset({SOCKMAP}),
    H.MSG_REDIRECT_MAP: frozenset({SOCKMAP}),
    H.SK_REDIRECT_HASH: frozenset({SOCKHASH}),
    H.SOCK_HASH_UPDATE: frozenset({SOCKHASH}),
    H.MSG_REDIRECT_HASH: frozenset({SOCKHASH}),
    H.GET_LOCAL_STORAGE: frozenset({CGROUP_STORAGE, PERCPU_CGROUP_STORAGE}),
    H.SK_SELECT_REUSEPORT: frozenset({REUSEPORT_SOCKARRAY, SOCKMAP, SOCKHASH}),
    H.MAP_PUSH_ELEM: frozenset({QUEUE, STACK, BLOOM_FILTER}),
    H.MAP_POP_ELEM: frozenset({QUEUE, STACK}),
    H.MAP_PEEK_ELEM: frozenset({QUEUE, STACK, BLOOM_FILTER}),
    H.SK_STORAGE_GET: frozenset({SK_STORAGE}),
    H.SK_STORAGE_DELETE: frozenset({SK_STORAGE}),
    H.MAP_LOOKUP_PERCPU_ELEM: frozenset({PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}),
}


def map_helper_error(map_type: int, func: int) -> str | None:
    """The kernel's complaint when a map of `map_type` is passed to helper `func`, or None."""
    allowed = MAP_HELPERS.get(map_type)
    accepted = HELPER_MAPS.get(func)
    if (allowed is not None and func not in allowed) or (
        accepted is not None and map_type not in accepted
    ):
        try:
            name = helper_name(func)
        except (KeyError, ValueError):
            name = "helper"
        return f"cannot pass map_type {map_type} into func {name}#{func}"
    return None


def _map_types(
    state: State, reg: int, opts: AnalysisOptions, loaded: frozenset[int] = frozenset()
) -> set[int] | None:
    """The types of the maps register `reg` may name (None: not known).

    A register joined over paths holds a range of map fds; the maps it may
    name are those in the range the program loads (`loaded`: lddw's fds and
    the inner maps of maps of maps), each checked as the kernel checks each
    path.
    """
    types = state.reg_types(reg)
    if not types or not types <= {"map_fd", "map_fd_programs"}:
        return None
    found: set[int] = set()
    for kind in sorted(types):
        fds = state.eval(var(reg_owner(reg), kind))
        one = fds.singleton()
        if one is not None and one in opts.maps:
            found.add(opts.maps[one].type)
        elif fds.is_finite():
            found |= {opts.maps[fd].type for fd in loaded if fds.lo <= fd <= fds.hi}
        if kind == "map_fd_programs":
            found.add(PROG_ARRAY)
    return found or None


def loaded_maps(cfg_insns: Mapping[Label, object], opts: AnalysisOptions) -> frozenset[int]:
    """The fds of the maps the program loads with lddw, and their inner maps."""
    fds = {insn.mapfd for insn in cfg_insns.values() if isinstance(insn, LoadMapFd)}
    fds |= {opts.maps[fd].inner for fd in fds if fd in opts.maps and opts.maps[fd].inner}
    return frozenset(fd for fd in fds if fd is not None and fd in opts.maps)


# -- division by zero, alignment, read-only maps -------------------------------------

_DIVISIONS = frozenset({BinOp.UDIV, BinOp.UMOD, BinOp.SDIV, BinOp.SMOD})
_SHIFTS = frozenset({BinOp.LSH, BinOp.RSH, BinOp.ARSH})


def _shift_error(insn: Bin) -> str | None:
    """check_alu_op: a shift by an immediate must be within the operand's width."""
    assert isinstance(insn.v, Imm)
    width = 64 if insn.is64 else 32
    amount = insn.v.v
    if amount >= 1 << 63:  # an immediate is sign-extended
        amount -= 1 << 64
    if 0 <= amount < width:
        return None
    return f"invalid shift {amount} (a {width}-bit shift by an immediate must be below {width})"


#: Helper arguments the helper writes (so never a read-only map's value).
_WRITTEN_ARGS = frozenset(
    {ArgKind.PTR_TO_UNINIT_MEM, ArgKind.PTR_TO_UNINIT_MEM_OR_NULL, ArgKind.PTR_TO_UNINIT_MAP_VALUE}
)


def _alignment_error(state: State, insn: Mem | Atomic) -> str | None:
    access = insn.access
    base = access.basereg.v
    if access.width == 1 or (base != 10 and state.reg_types(base) != {"stack"}):
        return None
    off = state.eval(var(reg_owner(base), "stack_offset")).singleton()
    if off is None or (off + access.offset) % access.width == 0:
        return None
    frame_top = -(-off // SUBPROGRAM_STACK_SIZE) * SUBPROGRAM_STACK_SIZE
    return (
        f"misaligned stack access off 0+{off - frame_top}+{access.offset} size {access.width} "
        "(the stack is accessed at multiples of the access size)"
    )


def _partial_fill_error(state: State, insn: Mem | Atomic) -> str | None:
    """allow_uninit_stack reads any stack byte, but a load at a known offset takes a
    spilled pointer whole or not at all (check_stack_read_fixed_off)."""
    base = insn.access.basereg.v
    if not isinstance(insn, Mem) or not insn.is_load:
        return None
    if base != 10 and state.reg_types(base) != {"stack"}:
        return None
    top = state.eval(var(reg_owner(base), "stack_offset")).singleton()
    if top is None:
        return None
    at = top + insn.access.offset
    end = at + insn.access.width
    for off, width in state.stack.cells:
        if off < end and at < off + width and (off, width) != (at, end - at):
            if state.types_of(cell_name(off, width)) != {"number"}:
                return "invalid size of register fill (a load of part of a spilled pointer)"
    return None


def _memory_error(state: State, insn: Mem | Atomic, opts: AnalysisOptions) -> str | None:
    msg = _alignment_error(state, insn)
    if msg is None and opts.allow_uninit_stack:
        msg = _partial_fill_error(state, insn)
    if msg is None and isinstance(insn, Mem) and not insn.is_load:
        base = insn.access.basereg.v
        if _packet_read_only(opts.linux_program_type) and "packet" in state.reg_types(base):
            msg = f"cannot write into packet ({opts.linux_program_type} programs may only read it)"
    if msg is None and (isinstance(insn, Atomic) or not insn.is_load):
        access = insn.access
        msg = readonly_write_error(state, access.basereg.v, access.offset, access.width, opts)
    return msg


def _read_registers(insn: object) -> list[int]:
    """The registers an instruction reads (check_reg_arg SRC_OP), calls aside."""
    regs: list[int] = []
    if isinstance(insn, Bin):
        regs += [] if insn.op == BinOp.MOV else [insn.dst.v]
        regs += [insn.v.v] if isinstance(insn.v, Reg) else []
    elif isinstance(insn, Un):
        regs.append(insn.dst.v)
    elif isinstance(insn, Mem):
        regs.append(insn.access.basereg.v)
        regs += [insn.value.v] if not insn.is_load and isinstance(insn.value, Reg) else []
    elif isinstance(insn, Atomic):
        regs += [insn.access.basereg.v, insn.valreg.v]
    elif isinstance(insn, Jmp) and insn.cond is not None:
        regs.append(insn.cond.left.v)
        regs += [insn.cond.right.v] if isinstance(insn.cond.right, Reg) else []
    elif isinstance(insn, Exit) and not insn.frame:
        regs.append(0)  # a subprogram may return without r0 (its caller may not use it)
    return regs


def _uninit_read_error(state: State, insn: object) -> str | None:
    """A register surely never written in its frame is read: "R6 !read_ok" (a callee's
    r6-r9 start uninitialised on the load path, transfer.py `_call_local`)."""
    for r in _read_registers(insn):
        if state.reg_types(r) == {"uninit"}:
            return f"R{r} !read_ok (the register is read before it is written in this function)"
    return None


def _helper_arg_error(state: State, insn: Call) -> str | None:
    """check_func_arg's rules PREVAIL does not have: a map argument may not be NULL (the
    result of a lookup in a map of maps, unchecked: map_ptr_or_null), and the size of a
    ring buffer reservation is a constant (ARG_CONST_ALLOC_SIZE_OR_ZERO)."""
    proto = prototype(insn.func)
    if proto is None:
        return None
    for i, kind in enumerate(proto.args):
        if kind != ArgKind.CONST_MAP_PTR:
            continue
        owner = reg_owner(i + 1)
        if state.reg_types(i + 1) == {"map_fd"} and state.eval(var(owner, "uvalue")).lo < 1:
            return (
                f"R{i + 1} type=map_ptr_or_null expected=map_ptr (a map from a lookup in a "
                "map of maps must be checked for NULL first)"
            )
    if insn.func == HelperId.RINGBUF_RESERVE:
        size = state.eval(var(reg_owner(2), "uvalue"))
        if state.reg_types(2) == {"number"} and size.singleton() is None:
            return "R2 is not a known constant (bpf_ringbuf_reserve's size must be a constant)"
    return None


def _helper_write_error(state: State, insn: Call, opts: AnalysisOptions) -> str | None:
    proto = prototype(insn.func)
    if proto is None:
        return None
    for i, kind in enumerate(proto.args):
        if kind in _WRITTEN_ARGS:
            size = 1
            if i + 1 < len(proto.args):
                size = state.eval(var(reg_owner(i + 2), "uvalue")).singleton() or size
            msg = readonly_write_error(state, i + 1, 0, size, opts)
            if msg is not None:
                return msg
    return None


# -- context accesses ----------------------------------------------------------------


@dataclass
class ContextFacts:
    """Context accesses by program pc (see `Report.context_accesses`)."""

    accesses: dict[int, int] = field(default_factory=dict)
    mixed: set[int] = field(default_factory=set)
    # node → the kernel's reason to reject it (checked with `linux_rules`)
    errors: dict[Label, str] = field(default_factory=dict)


def context_facts(cfg_insns: Mapping[Label, object], pre: Mapping[Label, State]) -> ContextFacts:
    """Which loads and stores access the context, at which offset, over every calling context."""
    facts = ContextFacts()
    other: set[int] = set()
    offsets: dict[int, set[int | None]] = {}
    first_label: dict[int, Label] = {}
    for label, insn in cfg_insns.items():
        if not isinstance(insn, Mem | Atomic):
            continue
        state = pre.get(label)
        pc = original_pc(label)
        if state is None or state.is_bottom() or pc is None:
            continue
        base = insn.access.basereg.v
        types = state.reg_types(base)
        if "ctx" not in types:
            other.add(pc)
            continue
        first_label.setdefault(pc, label)
        if types != {"ctx"}:
            facts.mixed.add(pc)
            facts.errors.setdefault(
                label,
                f"same insn cannot be used with different pointers (r{base} may be the "
                "context or another pointer)",
            )
            continue
        if isinstance(insn, Atomic):
            facts.mixed.add(pc)
            facts.errors.setdefault(label, f"BPF_ATOMIC stores into R{base} ctx is not allowed")
            continue
        off = state.eval(var(reg_owner(base), "ctx_offset")).singleton()
        offsets.setdefault(pc, set()).add(None if off is None else off + insn.access.offset)
        if off != 0:
            shown = "a variable offset" if off is None else f"off={off}"
            facts.errors.setdefault(
                label, f"dereference of modified ctx ptr R{base} ({shown}) disallowed"
            )
    for pc, seen in offsets.items():
        if len(seen) == 1 and None not in seen:
            facts.accesses[pc] = next(iter(seen))  # type: ignore[arg-type]
        else:
            facts.mixed.add(pc)
    for pc in sorted(other & (set(offsets) | facts.mixed)):
        facts.mixed.add(pc)
        facts.accesses.pop(pc, None)
        facts.errors.setdefault(
            first_label[pc],
            "same insn cannot be used with different pointers (the context in one "
            "calling context or path, another pointer in another)",
        )
    return facts


# -- the checks ------------------------------------------------------------------------


def _exit_error(
    state: State, exit_range: tuple[int, int] | None, where: str = "program exit"
) -> str | None:
    if exit_range is None:
        return None
    lo, hi = exit_range
    if state.reg_types(0) != {"number"}:
        return f"At {where} the register R0 is not a known value"
    s = state.eval(var(reg_owner(0), "svalue"))
    u = state.eval(var(reg_owner(0), "uvalue"))
    if s.within(lo, hi) or u.within(lo, hi):
        return None
    smin = "-oo" if not s.lb_finite() else str(s.lo)
    smax = "+oo" if not s.ub_finite() else str(s.hi)
    return (
        f"At {where} the register R0 has smin={smin} smax={smax} should have been in [{lo}, {hi}]"
    )


def _leak_error(state: State, sites: Mapping[int, int], what: str) -> str | None:
    for pc, func in sites.items():
        if state.eval(ref_var(pc)).hi > 0:
            if func == HelperId.RINGBUF_RESERVE:
                held = f"the ringbuf reservation at {pc} may be neither submitted nor discarded"
            else:
                name = "bpf_" + HelperId(func).name.lower()
                held = f"the socket {name} returned at {pc} may not be released (bpf_sk_release)"
            leak = f"{what} would lead to reference leak"
            return f"Unreleased reference alloc_insn={pc}: {held} ({leak})"
    return None


def _acquirers(cfg_insns: Mapping[Label, object]) -> dict[int, int]:
    """The pcs of the calls that acquire a reference, with the helper each calls."""
    sites = {}
    for insn in cfg_insns.values():
        if isinstance(insn, Call) and not insn.builtin:
            proto = prototype(insn.func)
            if proto is not None and proto.acquires:
                sites[insn.pc] = insn.func
    return dict(sorted(sites.items()))


def acquire_sites(cfg_insns: Mapping[Label, object]) -> list[int]:
    """The pcs of the calls that acquire a reference (ringbuf reserve, socket lookups)."""
    sites = set()
    for insn in cfg_insns.values():
        if isinstance(insn, Call) and not insn.builtin:
            proto = prototype(insn.func)
            if proto is not None and proto.acquires:
                sites.add(insn.pc)
    return sorted(sites)


def linux_rule_failures(
    cfg_insns: Mapping[Label, object],
    pre: Mapping[Label, State],
    facts: ContextFacts,
    opts: AnalysisOptions,
) -> dict[Label, str]:
    """Node → the kernel's reason to reject it, for the rules in the module docstring."""
    errors: dict[Label, str] = dict(facts.errors)
    sites = _acquirers(cfg_insns)
    loaded = loaded_maps(cfg_insns, opts)
    for label, insn in cfg_insns.items():
        state = pre.get(label)
        if state is None or state.is_bottom():
            continue
        msg = _uninit_read_error(state, insn)
        if msg is not None:
            pass
        elif isinstance(insn, Bin) and insn.op in _DIVISIONS and isinstance(insn.v, Imm):
            if insn.v.v == 0:
                msg = "div by zero (division or modulo by the immediate 0)"
        elif isinstance(insn, Bin) and insn.op in _SHIFTS and isinstance(insn.v, Imm):
            msg = _shift_error(insn)
        elif isinstance(insn, Mem | Atomic):
            msg = _memory_error(state, insn, opts)
        elif isinstance(insn, Exit) and not insn.frame:
            msg = _leak_error(state, sites, "BPF_EXIT instruction in main prog")
            msg = msg or _exit_error(state, opts.exit_range)
        elif isinstance(insn, CallbackReturn):
            # bpf_loop and for_each_map_elem callbacks return 0 (go on) or 1 (stop)
            msg = _exit_error(state, (0, 1), "callback return")
        elif isinstance(insn, Call) and not insn.builtin:
            proto = prototype(insn.func)
            if insn.func == HelperId.TAIL_CALL:
                msg = _leak_error(state, sites, "tail_call")
            msg = msg or _helper_arg_error(state, insn)
            msg = msg or _helper_write_error(state, insn, opts)
            if msg is None and proto is not None and ArgKind.CONST_MAP_PTR in proto.args:
                reg = proto.args.index(ArgKind.CONST_MAP_PTR) + 1
                for map_type in sorted(_map_types(state, reg, opts, loaded) or ()):
                    msg = map_helper_error(map_type, insn.func)
                    if msg:
                        break
        if msg is not None:
            errors.setdefault(label, msg)
    for label, msg in tail_call_stack_failures(cfg_insns, pre).items():
        errors.setdefault(label, msg)
    return errors


# -- tail calls mixed with bpf-to-bpf calls (check_max_stack_depth) -----------------

#: A function that makes tail calls may be called only while the frames of its
#: callers add up to less than this (kernel: up to 33 tail calls each keep
#: their callers' frames, so at most 33 * 256 bytes stay on the stack).
TAIL_CALL_CALLER_STACK = 256
#: The kernel's rounding of a function's stack depth when the program is
#: JIT-compiled (round_up_stack_depth; mixing tail calls and bpf-to-bpf calls
#: needs the JIT); checked on Linux 6.18: 232 bytes pass, 248 do not.
JIT_STACK_ROUNDING = 16


def _frame_owners(label: Label, cfg_insns: Mapping[Label, object], main: int) -> list[int] | None:
    """The entry pcs of the functions whose frames are live at `label`, outermost
    first (from the inlined call path in the label); None inside a callback."""
    if not isinstance(label, str):
        return [main]
    owners, prefix = [main], ""
    for part in label.split("/")[:-1]:
        prefix = f"{prefix}/{part}" if prefix else part
        insn = cfg_insns.get(int(prefix) if prefix.isdigit() else prefix)
        if not isinstance(insn, CallLocal):
            return None
        owners.append(insn.target)
    return owners


def _lowest_stack_accesses(insn: object, state: State) -> list[Interval]:
    # The stack offsets where the node's accesses start (the kernel's
    # grow_stack_state sees the lowest byte of each access).
    if isinstance(insn, Mem | Atomic):
        base = insn.access.basereg.v
        if state.reg_types(base) == {"stack"}:
            offs = state.eval(var(reg_owner(base), "stack_offset")) + insn.access.offset
            return [offs]
        return []
    if isinstance(insn, Call) and not insn.builtin:
        proto = prototype(insn.func)
        found = []
        for reg, kind in enumerate(proto.args if proto is not None else (), start=1):
            if kind in _STACK_MEMORY_ARGS and state.reg_types(reg) == {"stack"}:
                found.append(state.eval(var(reg_owner(reg), "stack_offset")))
        return found
    return []


_STACK_MEMORY_ARGS = frozenset(
    {
        ArgKind.PTR_TO_MAP_KEY,
        ArgKind.PTR_TO_MAP_VALUE,
        ArgKind.PTR_TO_UNINIT_MAP_VALUE,
        ArgKind.PTR_TO_MEM,
        ArgKind.PTR_TO_MEM_OR_NULL,
        ArgKind.PTR_TO_UNINIT_MEM,
        ArgKind.PTR_TO_UNINIT_MEM_OR_NULL,
        ArgKind.PTR_TO_STACK_OR_NULL,
    }
)


def function_stack_depths(
    cfg_insns: Mapping[Label, object], pre: Mapping[Label, State], main: int
) -> dict[int, int]:
    """Function entry pc → its stack depth as the kernel counts it: the lowest
    byte any access reaches in the function's frame (its own or a callee's
    through a pointer, a helper's through an argument), rounded up to 8."""
    depths: dict[int, int] = {}
    for label, insn in cfg_insns.items():
        state = pre.get(label)
        if state is None or state.is_bottom():
            continue
        lows = _lowest_stack_accesses(insn, state)
        if not lows:
            continue
        top = state.eval(var(reg_owner(10), "stack_offset")).singleton()
        owners = _frame_owners(label, cfg_insns, main)
        if top is None or owners is None:
            continue
        for low in lows:
            if not low.lb_finite():
                continue
            up = (low.lo - top) // SUBPROGRAM_STACK_SIZE + 1  # frames above the current one
            frame = len(owners) - 1 - up
            if not 0 <= frame < len(owners):
                continue
            depth = top + up * SUBPROGRAM_STACK_SIZE - low.lo
            depth = -(-depth // 8) * 8
            owner = owners[frame]
            depths[owner] = max(depths.get(owner, 0), depth)
    return depths


def tail_call_stack_failures(
    cfg_insns: Mapping[Label, object], pre: Mapping[Label, State]
) -> dict[Label, str]:
    """The kernel's rule on mixing tail calls and bpf-to-bpf calls.

    check_max_stack_depth walks the static call graph (every call
    instruction and callback address, reachable or not) from the entry
    function; a function other than the entry that contains a
    bpf_tail_call may be called only while its callers' frames (each
    rounded up to 16 bytes) add up to less than 256 bytes. The failure is
    reported at the function's first bpf_tail_call.
    """
    program = {label: insn for label, insn in cfg_insns.items() if isinstance(label, int)}
    if not program:
        return {}
    starts = function_starts(program)  # type: ignore[arg-type]
    main = starts[0]
    bounds = dict(zip(starts, starts[1:] + [max(program) + 1], strict=True))
    callees: dict[int, list[int]] = {}
    tail_call_at: dict[int, int] = {}
    for start, end in bounds.items():
        for pc in sorted(label for label in program if start <= label < end):
            insn = program[pc]
            if isinstance(insn, CallLocal):
                callees.setdefault(start, []).append(insn.target)
            elif isinstance(insn, LoadPseudo) and insn.kind == CODE_ADDR:
                callees.setdefault(start, []).append(callback_target(pc, insn))
            elif isinstance(insn, Call) and not insn.builtin and insn.func == HelperId.TAIL_CALL:
                tail_call_at.setdefault(start, pc)
    if not any(start != main for start in tail_call_at):
        return {}
    depths = function_stack_depths(cfg_insns, pre, main)
    errors: dict[Label, str] = {}

    def walk(function: int, previous: int, path: tuple[int, ...]) -> None:
        if function in path or len(path) > MAX_CALL_STACK_FRAMES:
            return  # recursion and depth: other rules' failures
        if function != main and function in tail_call_at and previous >= TAIL_CALL_CALLER_STACK:
            errors.setdefault(
                tail_call_at[function],
                "tail_calls are not allowed when call stack of previous frames is "
                f"{previous} bytes. Too large",
            )
            return
        own = -(-depths.get(function, 0) // JIT_STACK_ROUNDING) * JIT_STACK_ROUNDING
        for callee in callees.get(function, []):
            walk(callee, previous + own, (*path, function))

    walk(main, 0, ())
    return errors
