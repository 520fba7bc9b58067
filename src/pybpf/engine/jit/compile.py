"""Compiling a program's IR into the process-wide MCJIT engine, with the disk cache.

The module of a program is named after a sha256 *key* of everything that
decides its machine code, computed without building any IR: the
instruction bytes (which include the addresses of linked maps, since they
are `lddw` immediates), the helpers the program calls that exist in its
table and which native emitter handles each, the context-load table, the
verifier's operand ranges and memory regions (`Report.value_ranges`,
`Report.memory_regions`, see `ops`), a
description of each map the program names (emitters may specialise on the
map's kind), the sources of the JIT package and of the native runtime
helpers (so an edited translator never reuses an old object), and the
compiler's fingerprint (pybpf, llvmlite and LLVM versions, CPU). Every
symbol of the module is prefixed with the key, so two programs never
clash in the shared engine.

On a disk-cache hit nothing is built: the object the cache holds is added
to the engine as it is (`compiler._Engine.add_program`). Building the IR
only on a miss is worth it: building the IR of a 1000-instruction program
with llvmlite takes tens of milliseconds, loading the object well under
one. The sources digest is computed once per process.

Tiers: on a disk-cache miss the program is compiled twice, as production
JITs do. First (tier 0) with a code generation setting that is about
twice as fast (`compiler.PROGRAM_TIER0_OPT`), under a module and symbol
prefix of its own that never enters the disk cache, and the program runs
that code at once; then a background thread (`_Optimiser`, one for the
process) compiles the optimised object (tier 2) from the same IR, in an
LLVM context and with a target machine of its own, so that code
generation holds neither `compiler._lock` nor the GIL; only adding the
object to the shared engine takes the lock. The optimised object is what
the disk cache stores, so a later process loads tier 2 directly.
`NativeCode` is the program's code in this process: engines subscribe to
it and swap their entry points when tier 2 is ready. Old code is never
removed (runs in progress keep it). `PYBPF_JIT_TIERED=0` compiles the
optimised object synchronously instead.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...isa.instruction import Instruction, encode
from ...isa.opcodes import CALL, LDDW
from ...runtime.native import compiler
from ..cfg import ProgramLayout
from . import fallback
from .helper_registry import add_native_symbols, emitter_for
from .translate import build_ir, function_symbol, repeat_symbol

_SOURCE_DIRS = (Path(__file__).resolve().parent, Path(compiler.__file__).resolve().parent)


TIER_FIRST = 0
"""The tier of code compiled with the fast code generation setting."""

TIER_OPTIMISED = 2
"""The tier of optimised code (what the disk cache holds)."""

TIERED_ENV = "PYBPF_JIT_TIERED"
"""Set to 0 to compile every program's optimised code synchronously (no first tier)."""

EXIT_WAIT = 10.0
"""Seconds the exiting process lets queued optimisations finish before dropping the rest."""


def _log_failure(message: str, *args: object) -> None:
    """Log the exception being handled (logging is imported only then: ~3 ms of start-up)."""
    import logging

    logging.getLogger(__name__).exception(message, *args)


def tiered() -> bool:
    """Whether a disk-cache miss compiles a first tier (`PYBPF_JIT_TIERED`, on by default)."""
    value = os.environ.get(TIERED_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _first_tier_only() -> bool:
    # PYBPF_JIT_TIERED=first: never optimise (to measure the first tier's code).
    return os.environ.get(TIERED_ENV, "").strip().lower() == "first"


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """Native addresses of a compiled program's functions and repeat loop."""

    name: str
    prefix: str
    functions: dict[int, int]
    repeat: int
    tier: int = TIER_OPTIMISED


Listener = Callable[[CompiledProgram], None]


class NativeCode:
    """A program's native code in this process: its current tier, upgraded at most once.

    `current` is the `CompiledProgram` to run; `tier` is its tier. A first
    tier becomes optimised when the background compile ends (`_upgrade`),
    which calls every subscriber with the new code; a failed background
    compile (`error`) leaves the first tier running.
    """

    def __init__(self, current: CompiledProgram):
        self.current = current
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._finished = current.tier == TIER_OPTIMISED
        self._listeners: list[Listener] = []
        self._done = threading.Event()
        if self._finished:
            self._done.set()

    @property
    def tier(self) -> int:
        return self.current.tier

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(code)` when the optimised code is ready (now if it is already)."""
        with self._lock:
            if not self._finished:
                self._listeners.append(listener)
                return
            current = self.current
        if current.tier == TIER_OPTIMISED:
            listener(current)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background compile to end; True if the code is optimised."""
        self._done.wait(timeout)
        return self.tier == TIER_OPTIMISED

    def _finish(self, optimised: CompiledProgram | None, error: BaseException | None) -> None:
        with self._lock:
            if optimised is not None:
                self.current = optimised
            self.error = error
            self._finished = True
            listeners, self._listeners = self._listeners, []
        try:
            if optimised is not None:
                for listener in listeners:
                    try:
                        listener(optimised)
                    except Exception:  # noqa: BLE001 - one engine must not stop the others
                        _log_failure("JIT: installing optimised code failed")
        finally:
            self._done.set()


class _Optimiser:
    """The background thread that compiles optimised code (one per process, made on first use).

    Jobs run one at a time, in order, each parsing its IR in an LLVM
    context of its own and emitting with the thread's own target machine,
    so nothing LLVM-side is shared with other threads until the object is
    added to the engine under `compiler._lock`. At exit, queued jobs run
    for up to `EXIT_WAIT` seconds (their objects go to the disk cache), the
    rest are dropped, and the one running is waited for, so that LLVM never
    shuts down under it.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._stopping = False
        self._machine: Any = None
        self._thread = threading.Thread(target=self._loop, name="pybpf-jit-optimiser", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def machine(self) -> Any:
        """The optimising target machine of the background thread (only it uses it)."""
        if self._machine is None:
            self._machine = compiler._get_engine().new_program_machine()
        return self._machine

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def stop(self) -> None:
        """At exit: finish the queued jobs for a while (the cache keeps their objects), then drop."""
        self._jobs.put(None)
        self._thread.join(timeout=EXIT_WAIT)
        self._stopping = True
        self._thread.join(timeout=30)

    @property
    def stopping(self) -> bool:
        return self._stopping


_optimiser: _Optimiser | None = None
_optimiser_lock = threading.Lock()


_sources_digest: str | None = None
_compiled: dict[str, NativeCode] = {}
_memo_lock = threading.Lock()


def _get_optimiser() -> _Optimiser:
    global _optimiser
    with _optimiser_lock:
        if _optimiser is None:
            _optimiser = _Optimiser()
        return _optimiser


def _sources() -> str:
    global _sources_digest
    if _sources_digest is None:
        digest = hashlib.sha256()
        for directory in _SOURCE_DIRS:
            for name in sorted(n for n in os.listdir(directory) if n.endswith(".py")):
                with open(os.path.join(directory, name), "rb") as source:
                    data = source.read()
                digest.update(name.encode())
                digest.update(data)
        _sources_digest = digest.hexdigest()
    return _sources_digest


def _describe_map(runtime: Any, address: int) -> str | None:
    try:
        found = runtime.map_at(address)
    except Exception:  # noqa: BLE001 - not a map (or no runtime): nothing to describe
        return None
    kind = type(found)
    fields = ("map_type", "key_size", "value_size", "max_entries", "flags")
    values = [getattr(found, name, None) for name in fields]
    return f"{kind.__module__}.{kind.__qualname__}{values!r}"


def program_key(
    insns: list[Instruction],
    helpers: Any,
    runtime: Any,
    context_loads: Mapping[int, int],
    value_ranges: Mapping[int, Mapping[int, tuple[int, int]]] | None = None,
    memory_regions: Mapping[int, str] | None = None,
) -> str:
    """The sha256 hex key of a program's native code (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(compiler._get_engine().fingerprint().encode())
    digest.update(_sources().encode())
    digest.update(encode(insns))
    called = sorted({i.imm & 0xFFFFFFFF for i in insns if i.opcode == CALL and i.src == 0})
    for helper_id in called:
        if helper_id in helpers:
            emitter = emitter_for(helpers, helper_id)
            name = f"{emitter.__module__}.{emitter.__qualname__}" if emitter else "-"
            digest.update(f"|h{helper_id}:{name}".encode())
    digest.update(repr(sorted(context_loads.items())).encode())
    ranges = sorted((pc, sorted(regs.items())) for pc, regs in (value_ranges or {}).items())
    digest.update(f"|r{ranges!r}".encode())
    digest.update(f"|a{sorted((memory_regions or {}).items())!r}".encode())
    if runtime is not None:
        for insn in insns:
            if insn.opcode == LDDW and insn.src == 0:
                described = _describe_map(runtime, insn.imm & ((1 << 64) - 1))
                if described is not None:
                    digest.update(f"|m{insn.imm}:{described}".encode())
    return digest.hexdigest()


def _addresses(
    engine: Any, name: str, prefix: str, pcs: list[int], tier: int = TIER_OPTIMISED
) -> CompiledProgram | None:
    functions = {pc: engine.address(function_symbol(prefix, pc)) for pc in pcs}
    repeat = engine.address(repeat_symbol(prefix))
    if not repeat or not all(functions.values()):
        return None
    return CompiledProgram(name, prefix, functions, repeat, tier)


def _optimise(code: NativeCode, name: str, prefix: str, pcs: list[int], text: str) -> None:
    """The background job: compile the optimised object, add and cache it, upgrade `code`."""
    optimiser = _get_optimiser()
    if optimiser.stopping:
        code._finish(None, RuntimeError("the process is exiting"))
        return
    optimised = None
    error: BaseException | None = None
    try:
        started = time.perf_counter()
        context = compiler.llvm.create_context()
        try:
            data = compiler.emit_program_object(optimiser.machine(), name, text, context=context)
        finally:
            context.close()
        seconds = time.perf_counter() - started
        with compiler._lock:
            engine = compiler._get_engine()
            engine.add_program_object(name, data, seconds)
            optimised = _addresses(engine, name, prefix, pcs)
        if optimised is None:
            raise RuntimeError(f"JIT module {name}: compiled functions not found")
    except BaseException as failed:  # noqa: BLE001 - the first tier keeps running
        _log_failure("JIT: optimising %s failed", name)
        optimised, error = None, failed
    code._finish(optimised, error)


def compile_program(
    layout: ProgramLayout,
    insns: list[Instruction],
    *,
    helpers: Any,
    runtime: Any = None,
    context_loads: Mapping[int, int] | None = None,
    value_ranges: Mapping[int, Mapping[int, tuple[int, int]]] | None = None,
    memory_regions: Mapping[int, str] | None = None,
) -> tuple[CompiledProgram, str | None]:
    """Compile (or load from the disk cache) a checked program.

    Returns the program's `NativeCode` and the IR text (None when no IR
    was built: an in-process or disk-cache hit). On a miss, unless
    `tiered()` is off, the code is a first tier and the optimised object
    is compiled in the background (see the module docstring).
    """
    loads = dict(context_loads or {})
    ranges = dict(value_ranges or {})
    regions = dict(memory_regions or {})
    key = program_key(insns, helpers, runtime, loads, ranges, regions)
    name = f"pybpf-jit-{key[:32]}"
    prefix = f"bpfjit_{key[:24]}"
    pcs = sorted(layout.functions)
    memo = name
    with _memo_lock:
        known = _compiled.get(memo)
    if known is not None:
        return known, None
    fallback.register_symbol()
    add_native_symbols(helpers)
    with compiler._lock:  # MCJIT is not thread-safe; the compiler serialises on this lock
        engine = compiler._get_engine()
        with _memo_lock:
            known = _compiled.get(memo)
        if known is not None:
            return known, None
        text = None
        compiled = None
        background = False
        if engine.cache.contains(name):
            try:
                engine.add_program(name, None)
            except KeyError:
                pass
            else:
                compiled = _addresses(engine, name, prefix, pcs)
        if compiled is None:
            # A miss (or an unusable cached object): build the IR and compile.
            # A second attempt gets its own name so a bad object is never reused.
            text = build_ir(
                layout,
                prefix,
                helpers=helpers,
                runtime=runtime,
                context_loads=loads,
                value_ranges=ranges,
                memory_regions=regions,
                triple=engine.triple,
            )
            retry = engine.cache.contains(name) or name in engine.programs
            if retry:
                name = f"{name}-r"
                text = text.replace(prefix, f"{prefix}r")
                prefix = f"{prefix}r"
            if tiered() and not retry:
                # The first tier: symbols of its own, never stored in the disk cache.
                first_prefix = f"{prefix}t0"
                engine.add_program(name, text.replace(prefix, first_prefix), tier0=True)
                compiled = _addresses(engine, name, first_prefix, pcs, TIER_FIRST)
                background = True
            else:
                engine.add_program(name, text)
                compiled = _addresses(engine, name, prefix, pcs)
            if compiled is None:
                raise RuntimeError(f"JIT module {name}: compiled functions not found")
        code = NativeCode(compiled)
        with _memo_lock:
            _compiled[memo] = code
        if background and not _first_tier_only():
            source = text
            _get_optimiser().submit(lambda: _optimise(code, name, prefix, pcs, source))
    return code, text


def ir_text(
    layout: ProgramLayout,
    insns: list[Instruction],
    *,
    helpers: Any,
    runtime: Any = None,
    context_loads: Mapping[int, int] | None = None,
    value_ranges: Mapping[int, Mapping[int, tuple[int, int]]] | None = None,
    memory_regions: Mapping[int, str] | None = None,
) -> str:
    """The IR a program compiles to (built on demand, for `JitEngine.ir`)."""
    loads = dict(context_loads or {})
    ranges = dict(value_ranges or {})
    regions = dict(memory_regions or {})
    key = program_key(insns, helpers, runtime, loads, ranges, regions)
    return build_ir(
        layout,
        f"bpfjit_{key[:24]}",
        helpers=helpers,
        runtime=runtime,
        context_loads=loads,
        value_ranges=ranges,
        memory_regions=regions,
        triple=compiler._get_engine().triple,
    )
