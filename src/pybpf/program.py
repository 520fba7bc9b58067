"""`Program`: a live program of a loaded `Object`, linked against its live maps.

Linking rewrites what the ELF loader left symbolic, as the kernel's
verifier does when it resolves map fds: an `lddw` of a map
(src=MAP_FD, imm = map index) becomes a plain 64-bit immediate holding the
map pointer (`Map.address`), an `lddw` of global data (src=MAP_VALUE,
imm = index | offset << 32) the native address of that byte of the
section's value. Function addresses (src=FUNC) stay for the engine.
What cannot be resolved outside a kernel (kfuncs, ksym/kconfig externs,
CO-RE relocations that failed, maps of unsupported families) is recorded, not raised:
inspecting such a program works, running it raises `NotSupportedError`
naming the first unresolved item.

The engine (the JIT or the bounds-checked `Interpreter`, with the Linux
helper table and the object's `ExecutionContext` as `runtime`) is built on
first use; building it loads the object (`Object.load`), which freezes
`.rodata` and, unless the object was opened with `verify=False`, verifies
every program (`VerifierError` when one is rejected). Which engine runs is
decided by `engine.policy.choose_engine`: the JIT for verified programs
unless the interpreter-only policy is on or the object asked for the
interpreter; an unverified program runs only in the bounds-checked
interpreter. `engine_kind` names the engine once it is built. A JIT
engine's entry is registered in the context's native entry table, so that
JIT-compiled tail calls reach the program without entering Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .elf.specs import ProgramSpec, RelocationKind
from .errors import LoadError, NotSupportedError, PybpfError
from .hooks.test_run import TestRunResult, test_run
from .isa.instruction import Instruction, with_pcs
from .isa.opcodes import CALL, LDDW, CallSrc, PseudoSrc
from .link import Link
from .platform.extensions import extension_for_section, registered
from .platform.helper_ids import helper_name
from .platform.platforms import platform_named
from .platform.program_types import ProgramType
from .platform.sections import program_type_for_section
from .runtime.helpers import missing_helpers

if TYPE_CHECKING:
    from .object import Object

__all__ = ["Program", "program_type_of", "verifier_prog_type"]

_SECTION_PREFIXES = (
    ("xdp", ProgramType.XDP),
    ("socket", ProgramType.SOCKET_FILTER),
    ("classifier", ProgramType.SCHED_CLS),
    ("tc", ProgramType.SCHED_CLS),
    ("action", ProgramType.SCHED_ACT),
)
"""Fallback by prefix for section names libbpf does not know (old objects)."""


def program_type_of(section: str, platform: str = "linux") -> ProgramType:
    """The program type of a section name on `platform`: Linux's as libbpf decides it,
    eBPF for Windows' by its section table (UNSPEC if unknown)."""
    extension = extension_for_section(section)
    if extension is not None:  # an application's own program type, on either platform
        return extension.prog_type
    own = platform_named(platform).program_type(section)
    if own is not None:
        return own
    match = program_type_for_section(section)
    if match is not None:
        return match.prog_type
    for prefix, prog_type in _SECTION_PREFIXES:
        if section.startswith(prefix):
            return prog_type
    return ProgramType.UNSPEC


def verifier_prog_type(section: str, prog_type: ProgramType | None = None) -> str | None:
    """The verifier's name for the type a program of `section` runs as.

    `prog_type` when given (`--type`, `prog_type=`), else the libbpf
    section table decides, as for running; None when the verifier has no
    context for that type (it then uses its own table, from the section
    name alone).
    """
    from .verifier.contexts import PREVAIL_CONTEXTS

    name = (prog_type or program_type_of(section)).name.lower()
    known = name in PREVAIL_CONTEXTS or registered(name) is not None
    return name if known and name != "unspec" else None


def untyped_section_message(section: str, platform: str = "linux") -> str:
    """Why a program whose section says no type cannot load (libbpf: missing BPF prog type)."""
    return platform_named(platform).unknown_section(section)


class Program:
    """One program of an `Object`: its spec, linked instructions, id and engine.

    `name` is the function name (how libbpf names programs), `section` the
    ELF section, `prog_type` the `ProgramType` the section gives, `id` the
    program id in the object's `ExecutionContext` (what a prog_array holds),
    `instructions` the linked instructions, `unresolved` the reasons the
    program cannot run here (empty when it can). `report` is the verifier's
    `Report` once verified (None before, or when verification is off);
    `verified` is True only when the verifier accepted the program.
    """

    def __init__(self, obj: Object, spec: ProgramSpec):
        self.object = obj
        self.spec = spec
        self.name = spec.name
        self.section = spec.section
        #: `prog_type=` of the object when given (bpftool's `type`), else the section's.
        self.prog_type = getattr(obj, "prog_type", None) or program_type_of(
            spec.section, obj.spec.platform
        )
        self._autoload = spec.autoload
        self.unresolved: list[PybpfError] = []
        self.instructions: tuple[Instruction, ...] = ()
        self.link()
        self._engine: Any = None
        self._ctx_reach: tuple[Any, int | None] | None = None  # (report, max_ctx_offset)
        #: "jit" or "interpreter" once the engine is built (None before).
        self.engine_kind: str | None = None
        #: Why the default JIT was not used (e.g. an instruction it lacks), or None.
        self.fallback_reason: str | None = None
        self.report: Any = None
        self.verified = False
        self.id = obj.context.add_program(self)

    @property
    def autoload(self) -> bool:
        """Whether `Object.load` loads this program (libbpf's `bpf_program__autoload`).

        On by default, off for a `SEC("?…")` program. Settable until the
        object is loaded (then `LoadError`, as libbpf's -EINVAL); a program
        left out is not verified, and running it raises `LoadError`.
        """
        return self._autoload

    @autoload.setter
    def autoload(self, value: bool) -> None:
        if self.object.loaded:
            raise LoadError(
                f"{self.object.path}: program {self.name}: autoload cannot change after load"
            )
        self._autoload = bool(value)

    def link(self) -> None:
        """Link the instructions against the object's live maps (again, after a map changed).

        Sets `instructions` and `unresolved`.
        """
        self.unresolved = []
        self.instructions = self._link()

    def _link(self) -> tuple[Instruction, ...]:
        obj, spec = self.object, self.spec
        names = list(obj.spec.maps)
        where = f"{obj.path}: program {self.name}"
        out: list[Instruction] = []
        for pc, insn in with_pcs(spec.instructions):
            if insn.opcode == LDDW and insn.src in (PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE):
                index = insn.imm & 0xFFFFFFFF
                if index >= len(names):
                    self.unresolved.append(LoadError(f"{where}: pc {pc}: no map #{index}"))
                    out.append(insn)
                    continue
                name = names[index]
                try:
                    map_ = obj.maps[name]
                except PybpfError as error:
                    self.unresolved.append(error)
                    out.append(insn)
                    continue
                if insn.src == PseudoSrc.MAP_FD:
                    address = map_.address
                else:
                    value = map_.address_of(b"\0" * map_.spec.key_size)
                    if value is None:
                        self.unresolved.append(
                            LoadError(f"{where}: pc {pc}: map {name} has no element 0")
                        )
                        out.append(insn)
                        continue
                    address = value + ((insn.imm >> 32) & 0xFFFFFFFF)
                out.append(Instruction(LDDW, insn.dst, 0, insn.off, address))
                continue
            if insn.opcode == LDDW and insn.src not in (PseudoSrc.IMM64, PseudoSrc.FUNC):
                self.unresolved.append(self._unsupported(pc, f"lddw src={insn.src}"))
            elif insn.opcode == CALL and insn.src == CallSrc.KFUNC:
                self.unresolved.append(self._unsupported(pc, "kfunc call"))
            out.append(insn)
        for reloc in spec.relocations:
            if reloc.kind == RelocationKind.EXTERN:
                # A strong __ksym names a kernel symbol; there is no kernel here.
                self.unresolved.append(
                    NotSupportedError(
                        f"{where}: pc {reloc.pc}: extern __ksym {reloc.symbol!r} needs a "
                        "kernel symbol, which pybpf cannot provide (declare it __weak "
                        "to read it as absent)"
                    )
                )
        for pc, helper_id in missing_helpers(spec.instructions, obj.helpers):
            from .btf.core import POISON_IMM  # only when a helper is missing: CO-RE's code

            if helper_id == POISON_IMM:
                continue  # a failed CO-RE relocation: the verifier rejects it if reachable
            self.unresolved.append(
                NotSupportedError(
                    f"{where}: pc {pc}: calls {helper_name(helper_id)} ({helper_id}), "
                    "which pybpf does not implement"
                )
            )
        # CO-RE was applied when the object opened (`Object.core_results`).
        core_error = getattr(obj, "core_errors", {}).get(self.name)
        if core_error is not None:
            self.unresolved.append(core_error)
        return tuple(out)

    def _unsupported(self, pc: int, what: str) -> NotSupportedError:
        reloc = next((r for r in self.spec.relocations if r.pc == pc), None)
        named = reloc.describe() if reloc is not None else what
        if reloc is not None and reloc.kind not in (RelocationKind.KFUNC, RelocationKind.EXTERN):
            named = f"{what} ({named})"
        return NotSupportedError(f"{self.object.path}: program {self.name}: pc {pc}: {named}")

    # -- verifying --------------------------------------------------------------

    def verify(self) -> Any:
        """Verify this program (cached by program hash); return its `Report`.

        Does not raise: `Object.load` turns a rejection into `VerifierError`.
        """
        from .verifier.cache import verify_cached
        from .verifier.report import Failure, Report

        if self.prog_type == ProgramType.UNSPEC:
            # As libbpf, which refuses to load it ("missing BPF prog type"):
            # never a type guessed from the object's path.
            message = untyped_section_message(self.section, self.object.spec.platform)
            report = Report(failures=[Failure(0, None, message)])
        else:
            report = verify_cached(self.spec, self.object.verifier_spec(), self.verifier_prog_type)
        self.report = report
        self.verified = report.ok
        return report

    @property
    def verifier_prog_type(self) -> str | None:
        """The verifier's name for the type this program runs as (None: the section's)."""
        return verifier_prog_type(self.section, self.prog_type)

    # -- running ----------------------------------------------------------------

    def load(self) -> None:
        """Load the object (freezing `.rodata`, verifying) and check that this program can run.

        Raises the first unresolved item (`NotSupportedError` for a kfunc,
        extern, CO-RE relocation or unsupported map family), or
        `VerifierError` when the verifier rejected a program of the object.
        """
        self.object.load()
        if not self.autoload:
            raise LoadError(
                f"{self.object.path}: program {self.name} was not loaded (autoload is off)"
            )
        if self.unresolved:
            raise self.unresolved[0]
        if self.object.verify and not self.verified:
            # Object.load verified it; a rejection there already raised.
            from .object import rejection

            report = self.report if self.report is not None else self.verify()
            raise rejection(self.object.path, self.name, report)

    def _choose_engine(self) -> str:
        from .engine.policy import choose_engine

        where = f"{self.object.path}: program {self.name}"
        return choose_engine(self.object.engine, self.verified, where)

    @property
    def engine(self) -> Any:
        """The engine running this program, built (and the object loaded) on first use."""
        if self._engine is None:
            self.load()
            kind = self._choose_engine()
            if kind == "jit":
                try:
                    self._engine = self._build_jit()
                except NotSupportedError as error:
                    if self.object.engine == "jit":
                        raise
                    # The default engine: run in the interpreter rather than not at all.
                    self.fallback_reason = str(error)
                    kind = "interpreter"
            if self._engine is None:
                self._engine = self._build_interpreter()
            else:
                # JIT-compiled tail calls to this program jump here natively,
                # to the optimised code once it replaces the first tier.
                self.object.context.register_native_entry(
                    self.id, self._engine, self._engine.entry_address
                )
                self._engine.on_optimised(self._refresh_native_entry)
            self.engine_kind = kind
        return self._engine

    def _refresh_native_entry(self, engine: Any) -> None:
        # Called (from the JIT's background thread) when `engine` swaps to its
        # optimised code; a closed program stays unregistered.
        if self._engine is engine and self.object.context.native_engine(self.id) is engine:
            self.object.context.register_native_entry(self.id, engine, engine.entry_address)

    def _engine_arguments(self) -> dict[str, Any]:
        context = self.object.context
        return {
            "helpers": self.object.helpers,
            "memory": context.memory,
            "where": f"{self.object.path}:{self.name}",
            "runtime": context,
        }

    def _build_interpreter(self) -> Any:
        from .engine.interpreter import DEFAULT_BUDGET, Interpreter

        return Interpreter(self.instructions, budget=DEFAULT_BUDGET, **self._engine_arguments())

    def _build_jit(self) -> Any:
        # Only verified programs get here (choose_engine): the JIT trusts the
        # verifier's proof and its facts (context accesses, operand ranges, memory regions).
        from .engine.jit import JitEngine
        from .engine.jit.context_loads import context_loads

        loads = context_loads(self.instructions, self.report, self.prog_type)
        return JitEngine(
            self.instructions,
            context_loads=loads,
            value_ranges=getattr(self.report, "value_ranges", None),
            memory_regions=getattr(self.report, "memory_regions", None),
            **self._engine_arguments(),
        )

    def test_run(
        self,
        data: bytes = b"",
        ctx: bytes | None = None,
        repeat: int = 1,
        *,
        args: Iterable[int] | None = None,
        regs: dict[str, int] | None = None,
    ) -> TestRunResult:
        """Run once (or `repeat` times) as `bpf_prog_test_run_opts` would; see `hooks.test_run`.

        `args`: a raw tracepoint's arguments (or a tracepoint record's u64
        words); `regs`: a kprobe's or perf_event's registers, by name.
        """
        engine = self.engine
        return test_run(
            engine,
            self.prog_type,
            data=data,
            ctx=ctx,
            repeat=repeat,
            args=args,
            regs=regs,
            max_ctx_offset=self._max_ctx_offset(),
        )

    def _max_ctx_offset(self) -> int | None:
        """How far the program reads its context (from the verifier's facts), computed
        once per report: a walk of every instruction is too much for each run."""
        from .hooks.test_run import max_ctx_offset

        if self._ctx_reach is None or self._ctx_reach[0] is not self.report:
            self._ctx_reach = (self.report, max_ctx_offset(self.instructions, self.report))
        return self._ctx_reach[1]

    def attach_xdp(
        self,
        ifname: str,
        *,
        pass_to: str | None = None,
        pass_to_tap: str | None = None,
        netns: str | None = None,
        workers: int = 1,
    ) -> Link:
        """Put this XDP program in front of interface `ifname` (`hooks.live.attach_xdp`):
        frames it passes go to interface `pass_to` or TAP device `pass_to_tap`; `netns` is
        the path of the interfaces' network namespace; `workers` threads run this one
        program instance. Returns the `Link`."""
        from .hooks.live import attach_xdp

        hook = attach_xdp(
            self,
            ifname,
            pass_to=pass_to,
            pass_to_tap=pass_to_tap,
            netns=netns,
            workers=workers,
        )
        return Link(self, hook)

    def attach_sock_addr(self, command: Any = None, **popen: Any) -> Any:
        """Let this socket-address program decide real socket calls (`hooks.sock`): those
        of `command` and its descendants, under the seccomp supervisor, or without a
        command this process's own (audit hooks: deny only). Returns the `Link`."""
        from .hooks import sock

        if command is None:
            return sock.attach(self.object, programs=[self.name])
        return sock.run(self.object, command, programs=[self.name], **popen)

    def attach_tc(
        self,
        ifname: str,
        *,
        direction: str = "ingress",
        pass_to: str | None = None,
        pass_to_tap: str | None = None,
        netns: str | None = None,
        workers: int = 1,
    ) -> Link:
        """Attach this tc program to `ifname` on `direction` ("ingress" or "egress";
        `hooks.live.attach_tc`). Returns the `Link`."""
        from .hooks.live import attach_tc

        hook = attach_tc(
            self,
            ifname,
            direction=direction,
            pass_to=pass_to,
            pass_to_tap=pass_to_tap,
            netns=netns,
            workers=workers,
        )
        return Link(self, hook)

    def pin(self, path: str) -> None:
        """Pin this program at `path` (see `pybpf.pins`): it outlives its object until unpinned."""
        from . import pins

        pins.pin(path, self)

    def close(self) -> None:
        """Release the engine's stacks and forget the program id."""
        self.object.context.unregister_native_entry(self.id)
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.object.context.remove_program(self.id)

    def __repr__(self) -> str:
        return f"<Program {self.name!r} section={self.section!r} {self.prog_type.name.lower()}>"
