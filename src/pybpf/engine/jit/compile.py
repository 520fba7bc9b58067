"""Compiling a program's IR into the process-wide MCJIT engine, with the disk cache.

The module of a program is named after a sha256 *key* of everything that
decides its machine code, computed without building any IR: the
instruction bytes (which include the addresses of linked maps, since they
are `lddw` immediates), the helpers the program calls that exist in its
table and which native emitter handles each, the context-load table, a
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
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...isa.instruction import Instruction, encode
from ...isa.opcodes import CALL, LDDW
from ...runtime.native import compiler
from ..cfg import ProgramLayout
from . import fallback
from .helper_registry import emitter_for
from .translate import build_ir, function_symbol, repeat_symbol

_SOURCE_DIRS = (Path(__file__).resolve().parent, Path(compiler.__file__).resolve().parent)


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """Native addresses of a compiled program's functions and repeat loop."""

    name: str
    prefix: str
    functions: dict[int, int]
    repeat: int


_sources_digest: str | None = None
_compiled: dict[str, CompiledProgram] = {}
_memo_lock = threading.Lock()


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
    if runtime is not None:
        for insn in insns:
            if insn.opcode == LDDW and insn.src == 0:
                described = _describe_map(runtime, insn.imm & ((1 << 64) - 1))
                if described is not None:
                    digest.update(f"|m{insn.imm}:{described}".encode())
    return digest.hexdigest()


def _addresses(engine: Any, name: str, prefix: str, pcs: list[int]) -> CompiledProgram | None:
    functions = {pc: engine.address(function_symbol(prefix, pc)) for pc in pcs}
    repeat = engine.address(repeat_symbol(prefix))
    if not repeat or not all(functions.values()):
        return None
    return CompiledProgram(name, prefix, functions, repeat)


def compile_program(
    layout: ProgramLayout,
    insns: list[Instruction],
    *,
    helpers: Any,
    runtime: Any = None,
    context_loads: Mapping[int, int] | None = None,
) -> tuple[CompiledProgram, str | None]:
    """Compile (or load from the disk cache) a checked program.

    Returns the addresses and the IR text (None when no IR was built: an
    in-process or disk-cache hit).
    """
    loads = dict(context_loads or {})
    key = program_key(insns, helpers, runtime, loads)
    name = f"pybpf-jit-{key[:32]}"
    prefix = f"bpfjit_{key[:24]}"
    pcs = sorted(layout.functions)
    memo = name
    with _memo_lock:
        known = _compiled.get(memo)
    if known is not None:
        return known, None
    fallback.register_symbol()
    with compiler._lock:  # MCJIT is not thread-safe; the compiler serialises on this lock
        engine = compiler._get_engine()
        with _memo_lock:
            known = _compiled.get(memo)
        if known is not None:
            return known, None
        text = None
        compiled = None
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
                triple=engine.triple,
            )
            if engine.cache.contains(name) or name in engine.programs:
                name = f"{name}-r"
                text = text.replace(prefix, f"{prefix}r")
                prefix = f"{prefix}r"
            engine.add_program(name, text)
            compiled = _addresses(engine, name, prefix, pcs)
            if compiled is None:
                raise RuntimeError(f"JIT module {name}: compiled functions not found")
        with _memo_lock:
            _compiled[memo] = compiled
    return compiled, text


def ir_text(
    layout: ProgramLayout,
    insns: list[Instruction],
    *,
    helpers: Any,
    runtime: Any = None,
    context_loads: Mapping[int, int] | None = None,
) -> str:
    """The IR a program compiles to (built on demand, for `JitEngine.ir`)."""
    loads = dict(context_loads or {})
    key = program_key(insns, helpers, runtime, loads)
    return build_ir(
        layout,
        f"bpfjit_{key[:24]}",
        helpers=helpers,
        runtime=runtime,
        context_loads=loads,
        triple=compiler._get_engine().triple,
    )
