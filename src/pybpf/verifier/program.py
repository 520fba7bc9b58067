"""Verification of real programs: a clang object's `ProgramSpec` in its platform.

`verify_program(program_spec, object_spec)` gives the analysis what the
instructions alone do not say, the way PREVAIL's Linux platform does
(vbpf/prevail src/linux/linux_platform.cpp):

* the program type, from the section name and the object's path
  (`pybpf.platform.sections.prevail_program_type`), and with it the
  context layout: size and the offsets of `data`, `data_end` and
  `data_meta` (PREVAIL's src/linux/gpl/spec_type_descriptors.hpp);
* the map table: `lddw src=MAP_FD imm=i` names the object's i-th map
  (`MapSpec`: type, key and value sizes, entries; maps of maps get their
  inner map appended to the table so a lookup yields its fd), and
  `lddw src=MAP_VALUE` points into the value of a global-data map;
* relocations the loader could not resolve (kfuncs, extern variables):
  the program is rejected with the symbol's name, as a loader would;
  except calls of the compiler builtins `memset`, `memcpy`, `memmove`
  and `memcmp`, which PREVAIL's Linux platform resolves: those call
  sites become builtin `Call`s checked against their contracts
  (`helper_prototypes.BUILTINS`); pybpf's engines cannot run them yet;
* helpers without a prototype in `pybpf.platform.helper_prototypes` are
  rejected (the analysis cannot check what it does not know);
* each failure carries the C source line from BTF line_info.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..btf.core import POISON_IMM, poison_message
from ..elf.specs import MapSpec, ObjectSpec, ProgramSpec, RelocationKind
from ..isa import Instruction, with_pcs
from ..platform import helper_availability
from ..platform.extensions import registered
from ..platform.helper_ids import helper_name
from ..platform.helper_prototypes import BUILTINS, prototype
from ..platform.platforms import platform_named
from ..platform.program_type_info import program_type_info
from ..platform.sections import prevail_program_type, program_type_for_section
from .cfg import ENTRY, function_starts, original_pc
from .constraints import parse_invariant
from .contexts import PREVAIL_CONTEXTS, pointer_context_descriptor
from .contexts import SK_BUFF_CONTEXT as _SK_BUFF
from .fixpoint import AnalysisResult, NotSupported, analyze_program
from .global_functions import global_signatures
from .ir import Call, CallLocal, IrInstruction, Packet, Undefined, from_instruction
from .kernel_limits import kernel_wording, limit_failures
from .linux_rules import exit_value_range, helper_unavailable
from .options import AnalysisOptions, CtxDescriptor, MapDescriptor
from .report import Failure, Report
from .termination import prove_loops_terminate

__all__ = ["PREVAIL_CONTEXTS", "context_descriptor", "map_table", "verify_program"]

#: Helpers usable only with one context layout (PREVAIL's `ctx_descriptor` in
#: spec_prototypes.cpp): helper id → the descriptor its program type must have.
_HELPER_CONTEXTS: Mapping[int, CtxDescriptor] = {
    **dict.fromkeys((13, 18, 19, 20, 21, 29, 30, 31, 32, 33, 34, 39, 41, 50), _SK_BUFF),
    53: PREVAIL_CONTEXTS["sock_ops"],  # sock_map_update
    59: PREVAIL_CONTEXTS["sock_ops"],  # sock_ops_cb_flags_set
    56: PREVAIL_CONTEXTS["perf_event"],  # perf_prog_read_value
}

#: PREVAIL's privileged program types (PTYPE_PRIVILEGED in linux_platform.cpp).
PRIVILEGED_TYPES = frozenset({"kprobe", "raw_tracepoint", "raw_tracepoint_writable"})

_MAP_TYPES_OF_MAPS = (12, 13)  # BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS


def context_descriptor(prog_type: str) -> CtxDescriptor:
    """The context layout of PREVAIL program type `prog_type` (a socket filter's if unknown);
    a registered extension type's from its struct."""
    extension = registered(prog_type)
    if extension is not None:
        return pointer_context_descriptor(extension.extension.context)
    return PREVAIL_CONTEXTS.get(prog_type, _SK_BUFF)


_BPF_F_RDONLY_PROG = 1 << 7


def _descriptor(spec: MapSpec) -> MapDescriptor:
    # Frozen global data (`.rodata`, `.kconfig`) is read-only to programs and its bytes
    # are constants (verifier/frozen_maps.py); the loader passes the values set before
    # the load as `initial_data`.
    frozen = None
    if spec.frozen:
        frozen = (spec.initial_data or b"")[: spec.value_size].ljust(spec.value_size, b"\0")
    readonly = spec.frozen or bool(spec.flags & _BPF_F_RDONLY_PROG)
    return MapDescriptor(
        spec.key_size, spec.value_size, spec.max_entries, spec.type, None, readonly, frozen
    )


def map_table(object_spec: ObjectSpec) -> dict[int, MapDescriptor]:
    """Map index (the lddw immediate) → descriptor; inner maps are appended after the object's."""
    specs = list(object_spec.maps.values())
    table = {i: _descriptor(spec) for i, spec in enumerate(specs)}
    for i, spec in enumerate(specs):
        if spec.type in _MAP_TYPES_OF_MAPS and spec.inner_map is not None:
            inner = len(table)
            table[inner] = _descriptor(spec.inner_map)
            table[i] = replace(table[i], inner=inner)
    return table


def _entry(ctx: CtxDescriptor) -> list[str]:
    from . import entry_constraints

    return entry_constraints(ctx)


def verify_program(
    program_spec: ProgramSpec,
    object_spec: ObjectSpec,
    *,
    prog_type: str | None = None,
    options: AnalysisOptions | None = None,
) -> Report:
    """Verify one program of an object and return its `Report`.

    `prog_type` overrides the PREVAIL program type the section implies
    (`"xdp"`, `"sched_cls"`, …). `options` may set analysis switches
    (termination checking, …); its context and map table are replaced by
    the object's. Without `options`, the load path's are used
    (`AnalysisOptions.for_load()`: termination checked, context accesses
    checked field by field against the Linux tables); the PREVAIL
    comparisons pass PREVAIL's defaults instead.
    """
    linux_type = prog_type
    match = program_type_for_section(program_spec.section)
    if prog_type is None:
        prog_type = prevail_program_type(program_spec.section, object_spec.path).program_type.name
        linux_type = match.prog_type.name.lower() if match is not None else prog_type
    table = map_table(object_spec)
    opts = replace(options) if options is not None else AnalysisOptions.for_load()
    opts.program_type = prog_type
    opts.linux_program_type = linux_type
    opts.ctx = context_descriptor(prog_type)
    if opts.linux_ctx_fields and opts.linux_rules:
        # The load path: the context is as large as the struct the program type's record
        # lays out (PREVAIL bounds some generously: pt_regs of any architecture, 2048
        # bytes of tracepoint arguments), so that its field rules apply.
        opts.ctx = _linux_context(opts.ctx, linux_type)
    # PREVAIL's privileged types; on the load path every type, as the kernel's root
    # loader has allow_ptr_leaks (pointers stored into maps, passed as ANYTHING).
    opts.privileged = prog_type in PRIVILEGED_TYPES or opts.allow_ptr_leaks
    opts.maps = table
    opts.map_count = len(object_spec.maps)
    if opts.linux_rules and opts.exit_range is None:
        same_type = match is not None and match.prog_type.name.lower() == linux_type
        attach = match.attach_type if same_type else None
        opts.exit_range = exit_value_range(linux_type, attach)
        if attach is not None and opts.linux_attach_type is None:
            opts.linux_attach_type = attach.name

    builtins = {
        r.pc: BUILTINS[r.symbol].id
        for r in program_spec.relocations
        if r.kind == RelocationKind.KFUNC and r.symbol in BUILTINS
    }
    unresolved = [
        r
        for r in program_spec.relocations
        if r.kind in (RelocationKind.KFUNC, RelocationKind.EXTERN) and r.pc not in builtins
    ]
    if unresolved:
        first = min(unresolved, key=lambda r: r.pc)
        what = "kernel function" if first.kind == RelocationKind.KFUNC else "extern symbol"
        return _with_sources(
            Report(
                failures=[
                    Failure(
                        first.pc,
                        None,
                        f"unresolved {what} {first.symbol!r}: pybpf cannot link it",
                    )
                ]
            ),
            program_spec,
        )

    program = {
        pc: _to_ir(insn, pc, pc + insn.slots) for pc, insn in with_pcs(program_spec.instructions)
    }
    for pc, builtin in builtins.items():
        if isinstance(program.get(pc), Call):
            program[pc] = Call(int(builtin), pc, builtin=True)
    if opts.linux_rules:
        _mark_global_calls(program, program_spec, object_spec, linux_type)
    invalid = [pc for pc, insn in program.items() if isinstance(insn, Undefined)]
    if invalid:
        pc = invalid[0]
        raw = dict(with_pcs(program_spec.instructions))[pc]
        return _with_sources(
            Report(failures=[Failure(pc, None, f"invalid instruction: {_describe(raw)}")]),
            program_spec,
        )
    # libbpf's poisoned instruction (a CO-RE relocation that failed) is an
    # error only where the analysis reaches it, as in the kernel: dead code
    # behind `bpf_core_field_exists` is fine. Checked after the analysis.
    poisoned = {
        pc
        for pc, insn in program.items()
        if isinstance(insn, Call) and not insn.builtin and insn.func == POISON_IMM
    }
    unknown = [
        (pc, insn.func)
        for pc, insn in program.items()
        if isinstance(insn, Call)
        and not insn.builtin
        and prototype(insn.func) is None
        and pc not in poisoned
    ]
    wrong_type = [
        (pc, insn.func)
        for pc, insn in program.items()
        if isinstance(insn, Call)
        and not insn.builtin
        and insn.func in _HELPER_CONTEXTS
        and _HELPER_CONTEXTS[insn.func] != opts.ctx
    ]
    if opts.linux_rules:
        # The helper tables by the loader's type (a `tc` section verified under PREVAIL's
        # name socket_filter is still sched_cls to the kernel), attach type, sleepability.
        # The section's own type, by either name (PREVAIL's or libbpf's), keeps the
        # section's attach type; a type forced by the caller (`--type`) is that type.
        helper_type, helper_kind = opts.linux_program_type, (None, False)
        platform = platform_named(object_spec.platform)
        if match is not None and linux_type in (
            prevail_program_type(program_spec.section).program_type.name,
            match.prog_type.name.lower(),
        ):
            helper_type = match.prog_type.name.lower()
            helper_kind = (match.attach_type, match.sleepable)
        refused = [
            (pc, msg)
            for pc, insn in program.items()
            if isinstance(insn, Call)
            and not insn.builtin
            and pc not in poisoned
            and (msg := helper_unavailable(helper_type, insn.func, *helper_kind)) is not None
        ]
        # A helper only one platform has, called by an object of the other.
        refused += [
            (pc, msg)
            for pc, insn in program.items()
            if isinstance(insn, Call)
            and not insn.builtin
            and (msg := platform.foreign_helper(insn.func)) is not None
        ]
        # The license libbpf passes at load (the object's `license` section; an object
        # without one passes "", which is not GPL-compatible). A spec built in Python
        # that gives none (None) is not checked.
        license = program_spec.license if program_spec.license is not None else object_spec.license
        # GPL-only helpers are Linux's rule; eBPF for Windows has no such notion.
        if (
            platform.gpl_rules
            and license is not None
            and not helper_availability.gpl_compatible(license)
        ):
            refused += [
                (
                    pc,
                    "cannot call GPL-restricted function from non-GPL compatible program "
                    f"({helper_name(insn.func)}#{insn.func} is GPL-only; "
                    f"{f'license {license!r}' if license else 'the object has no license'})",
                )
                for pc, insn in program.items()
                if isinstance(insn, Call)
                and not insn.builtin
                and pc not in poisoned
                and not any(pc == p for p, _ in refused)
                and helper_availability.gpl_only(helper_type, helper_kind[0], insn.func)
            ]
        refused += [
            (pc, "BPF_LD_[ABS|IND] instructions not allowed for this program type")
            for pc, insn in program.items()
            if isinstance(insn, Packet)
            and opts.linux_program_type is not None
            and not _ld_abs_allowed(opts.linux_program_type)
        ]
        refused.sort(key=lambda item: item[0])
        if refused:
            pc, msg = refused[0]
            return _with_sources(Report(failures=[Failure(pc, None, msg)]), program_spec)
    if wrong_type:
        pc, func = wrong_type[0]
        return _with_sources(
            Report(
                failures=[
                    Failure(
                        pc,
                        None,
                        f"helper {_helper_label(func)} is not available to {prog_type} programs",
                    )
                ]
            ),
            program_spec,
        )
    if unknown:
        pc, func = unknown[0]
        return _with_sources(
            Report(
                failures=[
                    Failure(pc, None, f"helper {_helper_label(func)} is not supported by pybpf")
                ]
            ),
            program_spec,
        )
    try:
        entry = parse_invariant(_entry(opts.ctx))
        if opts.linux_rules:  # the kernel's entry frame: r1 and r10, the rest NOT_INIT
            for r in (0, 2, 3, 4, 5, 6, 7, 8, 9):
                entry.set_type(f"r{r}", {"uninit"})

        def analyse(widen_first: bool) -> AnalysisResult:
            result = analyze_program(program, entry, opts, widen_first=widen_first)
            if opts.check_termination:
                prove_loops_terminate(result, opts)
            if opts.linux_rules and result.cfg is not None:
                for label, msg in limit_failures(result).items():
                    result.failures.setdefault(label, Failure(label, None, msg))
            elif opts.linux_rules and result.control_flow_error is not None:
                result.control_flow_error = kernel_wording(result.control_flow_error)
            for label, state in result.pre.items():
                if original_pc(label) in poisoned and not state.is_bottom():
                    message = poison_message(program_spec, object_spec.btf, original_pc(label))
                    result.failures.setdefault(label, Failure(label, None, message))
            return result

        # Loops widened first (fast, sound); a failure after that may be the widening's
        # imprecision, so it is the unrolling analysis that rejects (fixpoint.py).
        try:
            result: AnalysisResult | None = analyse(widen_first=True)
        except NotSupported:  # the walk may still converge where the widening did not
            result = None
        if result is None or (
            result.widened_loops and (result.failures or result.control_flow_error)
        ):
            result = analyse(widen_first=False)
    except NotSupported as e:
        return Report(failures=[Failure(ENTRY, None, f"analysis not supported: {e}")])
    except RecursionError:
        return Report(failures=[Failure(ENTRY, None, "analysis not supported: nesting too deep")])
    return _with_sources(result.report(), program_spec)


def _linux_context(ctx: CtxDescriptor, linux_type: str | None) -> CtxDescriptor:
    """`ctx` with the size of the context struct of Linux type `linux_type`, if pybpf lays
    it out (`ProgramTypeInfo.context`)."""
    try:
        access = program_type_info(linux_type).context if linux_type else None
    except KeyError:
        return ctx
    if access is None or access.layout.size == ctx.size:
        return ctx
    return replace(ctx, size=access.layout.size)


def _ld_abs_allowed(linux_type: str) -> bool:
    """Whether LD_ABS / LD_IND are allowed (`ProgramTypeInfo.ld_abs`; may_access_skb)."""
    try:
        return program_type_info(linux_type).ld_abs
    except KeyError:
        return False


def _mark_global_calls(
    program: dict[int, IrInstruction],
    program_spec: ProgramSpec,
    object_spec: ObjectSpec,
    linux_type: str | None,
) -> None:
    """Give each call of a global function its BTF prototype (global_functions.py)."""
    starts = function_starts(program)
    signatures = global_signatures(program_spec.func_infos, object_spec.btf, starts, linux_type)
    if not signatures:
        return
    moving = _functions_moving_packet(program, starts)
    signatures = {pc: replace(sig, changes_packet=pc in moving) for pc, sig in signatures.items()}
    for pc, insn in program.items():
        if isinstance(insn, CallLocal) and insn.target in signatures:
            program[pc] = replace(insn, signature=signatures[insn.target])


def _functions_moving_packet(program: dict[int, IrInstruction], starts: list[int]) -> set[int]:
    """The functions (by start pc) that call, or call a function that calls, a helper
    that may move the packet (bpf_xdp_adjust_head, bpf_skb_pull_data, …)."""
    ends = dict(zip(starts, [*starts[1:], max(program) + 1], strict=True))
    calls: dict[int, set[int]] = {}
    moving: set[int] = set()
    for start, end in ends.items():
        for pc in (label for label in program if start <= label < end):
            insn = program[pc]
            if isinstance(insn, CallLocal):
                calls.setdefault(start, set()).add(insn.target)
            elif isinstance(insn, Call) and not insn.builtin:
                proto = prototype(insn.func)
                if proto is not None and proto.changes_pkt_data:
                    moving.add(start)
    changed = True
    while changed:
        changed = False
        for start, callees in calls.items():
            if start not in moving and callees & moving:
                moving.add(start)
                changed = True
    return moving


def _to_ir(insn: Instruction, pc: int, next_pc: int) -> IrInstruction:
    """`from_instruction`, with any field it cannot read turned into `Undefined`."""
    try:
        return from_instruction(insn, pc, next_pc)
    except (KeyError, ValueError, IndexError):
        return Undefined(insn.opcode)


def _describe(insn: Instruction) -> str:
    """`insn` as text, or its raw fields when the disassembler cannot print it."""
    fields = (
        f"opcode={insn.opcode:#04x} dst={insn.dst} src={insn.src} off={insn.off} imm={insn.imm}"
    )
    try:
        return f"{insn} ({fields})"
    except Exception:  # noqa: BLE001 - an invalid instruction may not disassemble
        return fields


def _helper_label(func: int) -> str:
    try:
        return f"{helper_name(func)} (id {func})"
    except (KeyError, ValueError):
        return f"id {func}"


def _with_sources(report: Report, program_spec: ProgramSpec) -> Report:
    """The report with each failure's C source line (from BTF line_info) filled in."""
    if not program_spec.line_infos:
        return report
    failures = []
    for failure in report.failures:
        pc = failure.pc
        info = program_spec.line_at(pc) if pc is not None and pc >= 0 else None
        if info is not None and failure.source_line is None:
            where = f"{info.file_name}:{info.line_number}"
            text = info.line.strip()
            failure = replace(failure, source_line=f"{where}: {text}" if text else where)
        failures.append(failure)
    report.failures = failures
    return report
