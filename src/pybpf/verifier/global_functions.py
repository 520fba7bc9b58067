"""Global functions: verified from their BTF prototype, as the Linux kernel does.

A function of the object with global linkage (`__noinline int f(...)`
without `static`) is verified by the kernel once, for any arguments its
BTF prototype allows, not with what each caller passes
(btf_prepare_func_args, btf_check_subprog_call). So:

- at a call, each argument must match the prototype: an integer or enum
  parameter takes a number; a pointer to the program type's context struct
  takes the context (at offset 0); a pointer to any other sized type takes
  memory of that size (stack, map value, packet, ring-buffer record) or
  NULL. Anything else is "Caller passes invalid args into func#N".
- inside, an integer parameter is an unknown number, a memory parameter a
  pointer to `size` bytes that may be NULL, the context the context, and
  nothing is known of the packet the caller checked.
- the caller gets back an unknown number, and the stack memory it passed
  holds unknown numbers (the callee may have written them).

pybpf still analyses the callee where it is called (cfg.py inlines every
call), but with this entry state, so the verdict is the kernel's
(transfer.py `_call_local`, `_return`; checks.py `_ValidGlobalCall`). Only on
the load path (`AnalysisOptions.linux_rules`): PREVAIL treats every
function as static.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..btf.spec import Spec as BtfSpec
from ..btf.types import Enum as BtfEnum
from ..btf.types import Enum64, Func, FuncProto, Fwd, Int, Linkage, Ptr, Struct, Union, Void
from ..errors import LoadError
from ..platform.program_type_info import program_type_info

MAX_ARGS = 5  # MAX_BPF_FUNC_REG_ARGS


class ArgKind(Enum):
    """What a global function's parameter takes."""

    SCALAR = "scalar"
    CTX = "ctx"
    MEM = "mem"  # `size` bytes of memory, or NULL


@dataclass(frozen=True, slots=True)
class GlobalArg:
    """One parameter of a global function's prototype."""

    kind: ArgKind
    size: int = 0


@dataclass(frozen=True, slots=True)
class GlobalSignature:
    """A global function as its callers see it.

    `index` is the function's subprogram number (the kernel's func#N: 0 is
    the program, then each function in instruction order). `error`, if set,
    is why the kernel refuses the prototype: every call to it fails.
    `changes_packet`: the function, or one it calls, calls a helper that
    may move the packet (its callers' packet facts are then gone).
    """

    name: str
    index: int
    args: tuple[GlobalArg, ...] = ()
    error: str | None = None
    changes_packet: bool = False


def global_signatures(
    func_infos: object, btf: BtfSpec | None, starts: list[int], prog_type: str | None
) -> dict[int, GlobalSignature]:
    """Start pc → signature of each global function other than the program itself.

    `func_infos` are the program's BTF func_info records (pc → FUNC type),
    `starts` the pcs where its functions begin (cfg.function_starts),
    `prog_type` the Linux program type name (its context struct).
    """
    if btf is None or not starts:
        return {}
    ctx_name = _ctx_struct(prog_type)
    found: dict[int, GlobalSignature] = {}
    for info in func_infos:  # type: ignore[attr-defined]
        if info.pc == starts[0] or info.pc not in starts:
            continue
        try:
            func = btf.type_by_id(info.type_id)
        except LoadError:
            continue
        if not isinstance(func, Func) or func.linkage != Linkage.GLOBAL:
            continue
        index = starts.index(info.pc)
        found[info.pc] = _signature(btf, func, index, ctx_name)
    return found


def _ctx_struct(prog_type: str | None) -> str | None:
    if prog_type is None:
        return None
    try:
        return program_type_info(prog_type).ctx_struct
    except KeyError:
        return None


def _signature(btf: BtfSpec, func: Func, index: int, ctx_name: str | None) -> GlobalSignature:
    try:
        proto = btf.resolve(func.type)
    except LoadError as e:
        return GlobalSignature(func.name, index, error=str(e))
    if not isinstance(proto, FuncProto):
        return GlobalSignature(func.name, index, error=f"{func.name}() has no prototype")
    if len(proto.params) > MAX_ARGS:
        return GlobalSignature(
            func.name,
            index,
            error=f"Global function {func.name}() with {len(proto.params)} > {MAX_ARGS} args",
        )
    ret = btf.resolve(proto.type)
    if not isinstance(ret, Int | BtfEnum | Enum64):
        return GlobalSignature(
            func.name,
            index,
            error=f"Global function {func.name}() doesn't return scalar. Only those are supported.",
        )
    args = []
    for i, param in enumerate(proto.params):
        arg = _arg(btf, param.type, ctx_name)
        if isinstance(arg, str):
            return GlobalSignature(func.name, index, error=f"arg#{i} {arg}")
        args.append(arg)
    return GlobalSignature(func.name, index, tuple(args))


def _arg(btf: BtfSpec, type_id: int, ctx_name: str | None) -> GlobalArg | str:
    """The parameter of BTF type `type_id`, or why the kernel refuses it."""
    t = btf.resolve(type_id)
    if isinstance(t, Int | BtfEnum | Enum64):
        return GlobalArg(ArgKind.SCALAR)
    if not isinstance(t, Ptr):
        return f"type {btf.type_name(type_id)} is not supported yet"
    target_id = btf.skip_qualifiers(t.type)
    target = btf.type_by_id(target_id)
    if isinstance(target, Struct | Union) and ctx_name is not None and target.name == ctx_name:
        return GlobalArg(ArgKind.CTX)
    if ctx_name is not None and _typedef_named(btf, t.type, ctx_name):
        return GlobalArg(ArgKind.CTX)
    if isinstance(target, Void | Fwd | Func | FuncProto):
        return f"reference type('{btf.type_name(target_id)}') size cannot be determined"
    try:
        size = btf.size_of(target_id)
    except LoadError:
        return f"reference type('{btf.type_name(target_id)}') size cannot be determined"
    return GlobalArg(ArgKind.MEM, size)


def _typedef_named(btf: BtfSpec, type_id: int, name: str) -> bool:
    """Whether the chain of typedefs and qualifiers from `type_id` passes a type called `name`
    (kprobes' `bpf_user_pt_regs_t` is a typedef)."""
    for _ in range(16):
        t = btf.type_by_id(type_id)
        if getattr(t, "name", "") == name:
            return True
        nxt = getattr(t, "type", None)
        if nxt is None or isinstance(t, Ptr):
            return False
        type_id = nxt
    return False
