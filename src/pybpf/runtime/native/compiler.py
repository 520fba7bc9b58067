"""The process-wide native compiler: LLVM IR built in Python → callable machine code.

Each part of the runtime that needs native code (a map family, later the
helpers) declares a `NativeModule`: a name, a function that fills an
`llvmlite.ir.Module`, and the ctypes prototypes of the functions it
exports. The first time one of its functions is asked for, the IR is built,
optimised, compiled by MCJIT into the one process-wide execution engine and
kept there for the life of the process. Compiled objects are also written to
an `ObjectCache`, so the next process loads them instead of compiling.

JIT-compiled eBPF programs take a path of their own (`_Engine.add_program`):
their IR goes through the full pipeline at `PROGRAM_SPEED_LEVEL` (the
optimised tier) or the few `PROGRAM_PASSES` (the first tier), is turned
into an object by a target machine of their own, and the object is added
to the same engine, where its calls of the native modules' functions
and of symbols added with `llvm.add_symbol` resolve; on a cache hit the
object is read and added without any IR. On a miss the JIT first adds a
quickly generated first tier (`PROGRAM_TIER0_OPT`) and makes the optimised
object in a background thread (`emit_program_object` in a context of its
own, then `_Engine.add_program_object` under `_lock`); see
`engine.jit.compile`.

Functions are plain C ABI functions: Python calls them through ctypes (which
releases the GIL during the call), and the JIT can call them directly by
address.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import llvmlite
import llvmlite.binding as llvm
from llvmlite import ir

from ... import __version__ as PYBPF_VERSION  # an upgrade never reuses an old object
from .object_cache import ObjectCache

PROGRAM_PASSES = ("always_inliner_pass", "sroa_pass", "sccp_pass", "simplify_cfg_pass")
"""The IR passes of a JIT program's first tier (`_Engine.add_program` with `tier0`).

The translator already gives LLVM SSA registers (phis only where values
meet), so the first tier needs little: these passes (a few ms: inlining of
the small bpf-to-bpf callees the translator marks `alwaysinline`, SROA for
the allocas of the repeat loop and of native helper emitters, constant
propagation, CFG cleanup) make code that runs close to what the same
pipeline at `PROGRAM_CODEGEN_OPT` gave before the optimised tier had a
pipeline of its own. The optimised tier runs LLVM's full pipeline instead
(`PROGRAM_SPEED_LEVEL`).
"""

PROGRAM_SPEED_LEVEL = 3
"""The LLVM pipeline of a JIT program's optimised tier: the full `O3` module pipeline
(llvmlite's `create_pass_builder` with `speed_level` 3: inlining, instcombine,
GVN, LICM, loop rotation and unrolling, vectorisation, correlated value
propagation, ...).

It runs in the background (`engine.jit.compile`), so its cost only delays
the swap from the first tier. What it buys: loops rotated, unrolled and
specialised, checks that the translator keeps for Linux semantics (a
division's zero test) removed where LLVM proves them redundant (the
translator itself leaves out those the verifier's ranges make redundant,
`engine.jit.ops`); the trial-division benchmark (bench_engines.py f) ran
in 0.46x the kernel's time instead of 0.95x with `PROGRAM_PASSES`.
Measured on the IR of a generated 1000-instruction program: the passes
take ~85 ms at O3 and ~82 ms at O2 (`PROGRAM_PASSES`: ~3 ms), code
generation ~45 ms either way; O2 and O3 code ran alike on the benchmarks.
"""

PROGRAM_CODEGEN_OPT = 2
"""The code generation level of JIT programs. Measured alternatives: level 0
(FastISel, fast register allocation) generates code ~5x faster but runs
the compute-loop benchmark ~18% slower (and the XDP counter ~50%); FastISel
at level 2 (`-fast-isel`) halves instruction selection but runs it ~35%
slower; level 1 costs as much as level 2."""

PROGRAM_TIER0_OPT = 0
"""The code generation level of a program's first tier (see `engine.jit.compile`):
on a disk-cache miss a program first runs code from a target machine at
this level, with FastISel off (`PROGRAM_TIER0_FAST_ISEL`), while the
`PROGRAM_CODEGEN_OPT` object is made in the background."""

PROGRAM_TIER0_FAST_ISEL = False
"""Whether first-tier code generation uses FastISel. Off: SelectionDAG at
level 0 (with the fast register allocator) takes about half the time of
level 2 and its code runs far closer to level 2's than FastISel's does.
LLVM decides this from its global `-fast-isel` option, which only changes
what level-0 target machines do (level 2 never uses FastISel unless asked)."""


@dataclass
class CompileStats:
    """What the compiler did in this process, by module name.

    `compiled` lists modules that MCJIT turned into machine code here;
    `loaded` those whose object came from the on-disk cache. Tests use it to
    check the cache without timing anything.
    """

    compiled: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: JIT programs compiled here as a first tier (also in `compiled`; their
    #: first-tier compile's seconds are under `<name>-t0`, the optimised one's under the name).
    first_tier: list[str] = field(default_factory=list)


class _Engine:
    """The one MCJIT engine of the process, with its target machine and cache."""

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        target = llvm.Target.from_triple(self.triple)
        # Tuned for the host CPU: the objects never leave this machine, and
        # the cache key includes cpu and features for shared home directories.
        self.target_machine = target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=2, codemodel="jitdefault"
        )
        # MCJIT starts from a module, which it compiles at the first
        # finalize_object(): an empty one, named so that its object, too,
        # comes from the cache (code generation is ~2 ms even for nothing).
        empty = llvm.parse_assembly("")
        empty.name = "pybpf-empty-" + hashlib.sha256(self.fingerprint().encode()).hexdigest()[:32]
        self.engine = llvm.create_mcjit_compiler(empty, self.target_machine)
        self.cache = ObjectCache.from_environment()
        self.stats = CompileStats()
        self._preloaded: dict[str, bytes] = {}
        cached = self.cache.load(empty.name)
        if cached is not None:
            self._preloaded[empty.name] = cached
        self.engine.set_object_cache(self._notify, self._getbuffer)
        self.modules: dict[str, llvm.ModuleRef] = {}
        self.programs: set[str] = set()
        self._program_machine: llvm.TargetMachine | None = None
        self._tier0_machine: llvm.TargetMachine | None = None

    @property
    def program_machine(self) -> llvm.TargetMachine:
        """The target machine of JIT programs (made on first compile: not needed on cache hits)."""
        if self._program_machine is None:
            target = llvm.Target.from_triple(self.triple)
            self._program_machine = target.create_target_machine(
                cpu=self.cpu,
                features=self.features,
                opt=PROGRAM_CODEGEN_OPT,
                codemodel="jitdefault",
            )
        return self._program_machine

    @property
    def tier0_machine(self) -> llvm.TargetMachine:
        """The target machine of first-tier program code (`PROGRAM_TIER0_OPT`)."""
        if self._tier0_machine is None:
            if not PROGRAM_TIER0_FAST_ISEL:
                _fast_isel_off()
            self._tier0_machine = self.new_program_machine(PROGRAM_TIER0_OPT)
        return self._tier0_machine

    def new_program_machine(self, opt: int = PROGRAM_CODEGEN_OPT) -> llvm.TargetMachine:
        """A new target machine for program code (one per thread that emits objects)."""
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=opt, codemodel="jitdefault"
        )

    def fingerprint(self) -> str:
        """Everything besides the IR that decides what machine code comes out."""
        llvm_version = ".".join(map(str, llvm.llvm_version_info))
        return "|".join(
            (
                PYBPF_VERSION,
                llvmlite.__version__,
                llvm_version,
                self.triple,
                self.cpu,
                self.features,
            )
        )

    # MCJIT calls these two from inside finalize_object().
    def _getbuffer(self, module: llvm.ModuleRef) -> bytes | None:
        return self._preloaded.get(module.name)

    def _notify(self, module: llvm.ModuleRef, data: bytes) -> None:
        self.cache.store(module.name, data)

    def add(self, name: str, text: str, cache_name: str | None = None) -> None:
        """Compile (or load from the cache) the module `name` with IR `text`.

        The cache holds it under `name` and a digest of `text` and the
        fingerprint: a caller that reuses a name for other IR (test harnesses
        numbering their modules) never gets another module's machine code.
        `cache_name` replaces that name for a caller whose name already says
        everything that decides the IR (`NativeModule`'s own modules)."""
        started = time.perf_counter()
        module = llvm.parse_assembly(text)
        if cache_name is None:
            cache_name = module_cache_name(self.fingerprint(), name, text)
        module.name = cache_name  # what MCJIT's cache callbacks see
        module.verify()
        cached = self.cache.load(cache_name)
        if cached is not None:
            self._preloaded[cache_name] = cached
        else:
            # Optimising is most of the work; skip it when the object is on
            # disk, since MCJIT then never looks at the IR's bodies.
            options = llvm.create_pipeline_tuning_options(speed_level=2)
            builder = llvm.create_pass_builder(self.target_machine, options)
            builder.getModulePassManager().run(module, builder)
        self.engine.add_module(module)
        self.engine.finalize_object()
        if self._preloaded.pop(cache_name, None) is not None:
            self.stats.loaded.append(name)
        else:
            self.stats.compiled.append(name)
        self.stats.seconds[name] = time.perf_counter() - started
        self.modules[name] = module

    def add_program(
        self, name: str, text: str | None, *, tier0: bool = False, store: bool = True
    ) -> None:
        """Compile (or, with `text` None, load from the cache) the JIT program module `name`.

        Programs take a path of their own (see `PROGRAM_SPEED_LEVEL`,
        `PROGRAM_PASSES`, `PROGRAM_CODEGEN_OPT`): the IR is optimised and
        turned into an object here, by a target machine of their own, and the
        object is added to the one MCJIT engine, so that its symbols resolve
        against the native modules and those added with `llvm.add_symbol`.
        `tier0` compiles with the first-tier machine (`PROGRAM_TIER0_OPT`)
        a module named `<name>-t0` that never enters the disk cache (its IR
        must use symbols of its own); `store` False keeps any object out of
        the cache. The caller holds `_lock`.
        """
        started = time.perf_counter()
        module = f"{name}-t0" if tier0 else name
        if text is None:
            data = self.cache.load(name)
            if data is None:
                raise KeyError(name)
            self.stats.loaded.append(name)
        else:
            machine = self.tier0_machine if tier0 else self.program_machine
            data = emit_program_object(machine, module, text, verify=True, optimise=not tier0)
            if store and not tier0:
                self.cache.store(name, data)
            self.stats.compiled.append(name)
            if tier0:
                self.stats.first_tier.append(name)
        self._add_object(module, data)
        self.stats.seconds[module] = time.perf_counter() - started

    def add_program_object(self, name: str, data: bytes, seconds: float) -> None:
        """Add a program object made by `emit_program_object` elsewhere; store it in the cache.

        The caller holds `_lock`; `seconds` is what making the object took.
        """
        started = time.perf_counter()
        self.cache.store(name, data)
        if name not in self.stats.compiled:
            self.stats.compiled.append(name)
        self._add_object(name, data)
        self.stats.seconds[name] = seconds + time.perf_counter() - started

    def _add_object(self, name: str, data: bytes) -> None:
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(data))
        self.engine.finalize_object()
        self.programs.add(name)

    def address(self, symbol: str) -> int:
        """The native address of a compiled function (0 if unknown)."""
        return self.engine.get_function_address(symbol)

    def add_module_object(self, name: str, data: bytes) -> None:
        """Add the object of native module `name` read from the disk cache (no IR built)."""
        started = time.perf_counter()
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(data))
        self.engine.finalize_object()
        self.stats.loaded.append(name)
        self.stats.seconds[name] = time.perf_counter() - started


def module_cache_name(fingerprint: str, name: str, text: str) -> str:
    """The disk-cache name of module `name` with IR `text` (`_Engine.add`): the IR and the
    compiler decide the object, so a name reused for other IR never gets this one's."""
    digest = hashlib.sha256(f"{fingerprint}\n{text}".encode()).hexdigest()[:16]
    return f"{name}-{digest}"


_package_sources: str | None = None


def package_sources_digest() -> str:
    """A digest of the pybpf package's source files and of the Python running it (once per
    process): what decides the IR of pybpf's own native modules besides the compiler.

    Each file counts by path, size and modification time, as Python's own bytecode
    cache decides whether a source changed: the code that builds the IR is never
    newer than what this sees (reading and hashing the 2 MB of sources instead
    costs ~10 ms per process)."""
    global _package_sources
    if _package_sources is None:
        package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        _package_sources = sources_digest(package)
    return _package_sources


def sources_digest(package: str) -> str:
    """The digest `package_sources_digest` makes of the `*.py` files under `package`."""
    digest = hashlib.sha256(sys.version.encode())
    for relative, stat in sorted(_python_sources(package, ""), key=_by_parts):
        digest.update(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}|".encode())
    return digest.hexdigest()


def _by_parts(source: tuple[str, os.stat_result]) -> list[str]:
    """Sort key: path components, the order of the `Path`s the digest was first made of."""
    return source[0].split("/")


def _python_sources(directory: str, relative: str) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to the package, stat) of every `*.py` under `directory`, as
    `Path.rglob` finds them (os.scandir: a third of pathlib's cost on ~270 files)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir():
                yield from _python_sources(entry.path, name)
            elif entry.name.endswith(".py") and entry.is_file():
                yield name, entry.stat()


def emit_program_object(
    machine: llvm.TargetMachine,
    name: str,
    text: str,
    *,
    verify: bool = False,
    context: llvm.ContextRef | None = None,
    optimise: bool = True,
) -> bytes:
    """The object of JIT program IR `text`: parsed, optimised, emitted by `machine`.

    `optimise` runs the optimised tier's full pipeline (`PROGRAM_SPEED_LEVEL`),
    else the first tier's `PROGRAM_PASSES`. Touches no engine state. With
    a `context` of its own and a `machine` no other thread uses, this runs
    without `_lock`, in parallel with the rest of the compiler (llvmlite
    releases the GIL in LLVM calls); with the global context (None) the
    caller holds `_lock`.
    """
    module = llvm.parse_assembly(text, context)
    try:
        module.name = name
        if verify:
            module.verify()  # well under a millisecond, and LLVM never sees bad IR
        if optimise:
            options = llvm.create_pipeline_tuning_options(speed_level=PROGRAM_SPEED_LEVEL)
            builder = llvm.create_pass_builder(machine, options)
            builder.getModulePassManager().run(module, builder)
        else:
            options = llvm.create_pipeline_tuning_options(speed_level=0)
            builder = llvm.create_pass_builder(machine, options)
            passes = llvm.create_new_module_pass_manager()
            for added in PROGRAM_PASSES:
                getattr(passes, f"add_{added}")()
            passes.run(module, builder)
        return machine.emit_object(module)
    finally:
        module.close()


_fast_isel_set = False


def _fast_isel_off() -> None:
    # A global LLVM option (only level-0 target machines consult it), set once:
    # LLVM refuses an option given twice.
    global _fast_isel_set
    with _lock:
        if not _fast_isel_set:
            _fast_isel_set = True
            llvm.set_option("pybpf", "-fast-isel=false")


_engine: _Engine | None = None
_lock = threading.RLock()


def _get_engine() -> _Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def compile_stats() -> CompileStats:
    """What was compiled or loaded from the cache in this process so far."""
    return _get_engine().stats


Prototype = Callable[..., object]  # a ctypes CFUNCTYPE(...) class


class NativeModule:
    """A named set of native functions, built from IR and compiled once per process.

    `build(module)` adds the functions to an empty `ir.Module`; exported
    functions must have external linkage and a name listed in
    `prototypes` (ctypes `CFUNCTYPE` classes), helpers inside should be
    `internal` so that modules never clash in the shared engine.

    The modules pybpf declares (their `build` is a function of the pybpf
    package) build the same IR from the same sources, so their disk-cache
    key is the package's sources digest, the Python version and the
    compiler's fingerprint (`package_sources_digest`): a process whose cache
    holds the object adds it without building any IR (building and printing
    a map family's IR with llvmlite is tens of milliseconds, loading its
    object well under one). A `build` from elsewhere (a test's) is keyed by
    the IR it builds, as `_Engine.add` keys every module.
    """

    def __init__(
        self,
        name: str,
        build: Callable[[ir.Module], None],
        prototypes: dict[str, Prototype],
    ):
        self.name = name
        self._build = build
        self._prototypes = prototypes
        self._addresses: dict[str, int] | None = None
        self._functions: dict[str, object] = {}

    def ir_text(self) -> str:
        """The module's LLVM IR as text (what the cache key hashes)."""
        module = ir.Module(name=self.name)
        module.triple = _get_engine().triple
        self._build(module)
        return str(module)

    def _ensure(self) -> dict[str, int]:
        if self._addresses is not None:
            return self._addresses
        with _lock:
            if self._addresses is None:
                engine = _get_engine()
                if getattr(self._build, "__module__", "").startswith("pybpf."):
                    self._add_by_sources(engine)
                else:
                    text = self.ir_text()
                    digest = hashlib.sha256(f"{engine.fingerprint()}\n{text}".encode()).hexdigest()
                    engine.add(f"pybpf-{self.name}-{digest[:32]}", text)
                addresses = {}
                for symbol in self._prototypes:
                    address = engine.address(symbol)
                    if not address:
                        raise RuntimeError(f"native module {self.name}: no function {symbol}")
                    addresses[symbol] = address
                self._addresses = addresses
        return self._addresses

    def _add_by_sources(self, engine: _Engine) -> None:
        """Add the module keyed by pybpf's sources: its cached object, else compile and keep it."""
        sources = f"{engine.fingerprint()}\n{package_sources_digest()}"
        key = hashlib.sha256(sources.encode()).hexdigest()
        name = f"pybpf-{self.name}-{key[:32]}"
        data = engine.cache.load(name)
        if data is not None:
            engine.add_module_object(name, data)
            return
        engine.add(name, self.ir_text(), cache_name=name)  # MCJIT stores it under `name`

    def exports(self, symbol: str) -> bool:
        """Whether `symbol` is one of the module's exported functions (compiles nothing)."""
        return symbol in self._prototypes

    def address(self, symbol: str) -> int:
        """The native address of exported function `symbol` (compiling on first use)."""
        return self._ensure()[symbol]

    def function(self, symbol: str) -> Callable[..., int]:
        """Exported function `symbol` as a ctypes callable (the GIL is released in calls)."""
        found = self._functions.get(symbol)
        if found is None:
            found = self._prototypes[symbol](self.address(symbol))
            self._functions[symbol] = found
        return found  # type: ignore[return-value]
