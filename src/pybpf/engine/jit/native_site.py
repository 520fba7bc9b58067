"""IR pieces every native helper emitter uses: RunState fields, external symbols, the fallback.

Emitters (see `helper_registry`) write IR into the program's function at
a `HelperSite`. They reach `RunState` fields by the offsets of the ctypes
structure in `abi` (one definition of the layout), call native functions
of the runtime by symbol name (every native module lives in the one MCJIT
engine, so names resolve across modules and no address is baked into a
cached object), and, where a case cannot be handled natively, call the
Python fallback themselves (`emit_fallback`), checking `status` the way
the translator does after its own fallback calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import llvmlite.binding as llvm
from llvmlite import ir

from ...runtime.native.irblocks import I32, I64, PTR, i64, load_field, store_field
from .abi import RunState

_symbols_lock = threading.Lock()
_added_symbols: dict[str, int] = {}


def run_address(site: object) -> ir.Value:
    """The `RunState*` of the site as an `i64` address."""
    run = site.run  # type: ignore[attr-defined]
    if isinstance(run.type, ir.IntType):
        return run
    return site.builder.ptrtoint(run, I64)  # type: ignore[attr-defined]


def run_field(site: object, name: str) -> ir.Value:
    """Load integer field `name` of the site's `RunState` (its own width)."""
    return load_field(site.builder, RunState, run_address(site), name)  # type: ignore[attr-defined]


def store_run_field(site: object, name: str, value: ir.Value) -> None:
    """Store `value` (of the field's width) into field `name` of the site's `RunState`."""
    store_field(site.builder, RunState, run_address(site), name, value)  # type: ignore[attr-defined]


def run_cpu(site: object) -> ir.Value:
    """`run->cpu` widened to `i64` (the per-CPU slot of this run)."""
    return site.builder.zext(run_field(site, "cpu"), I64)  # type: ignore[attr-defined]


def declare(module: ir.Module, symbol: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """The external function `symbol` in `module`, declared once."""
    existing = module.globals.get(symbol)
    if existing is not None:
        return existing  # type: ignore[return-value]
    return ir.Function(module, ir.FunctionType(ret, args), name=symbol)


def call_symbol(site: object, symbol: str, args: list[ir.Value]) -> ir.Value:
    """Call native `i64 symbol(i64, ...)` with `args` (every argument widened to i64)."""
    builder = site.builder  # type: ignore[attr-defined]
    widened = [a if a.type == I64 else builder.zext(a, I64) for a in args]
    function = declare(site.module, symbol, I64, [I64] * len(widened))  # type: ignore[attr-defined]
    return builder.call(function, widened)


def add_symbol(name: str, address: int) -> None:
    """Make `name` resolve to `address` in modules linked from now on (idempotent).

    For process-specific addresses (C library functions, tables owned by
    Python): the IR names the symbol, never the address.
    """
    with _symbols_lock:
        if _added_symbols.get(name) != address:
            llvm.add_symbol(name, address)
            _added_symbols[name] = address


def emit_fallback(site: object, helper_id: int) -> ir.Value:
    """Call the Python implementation of `helper_id` with the site's r1..r5; returns r0.

    Used for the rare cases of an otherwise native helper. When the Python
    side raised, `run->status` is set: the function returns at once (the
    engine re-raises after the native call), as after the translator's
    own fallback calls.
    """
    from .fallback import FALLBACK_SYMBOL, KIND_HELPER, encode_call, register_symbol

    register_symbol()
    builder: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    module: ir.Module = site.module  # type: ignore[attr-defined]
    function = declare(module, FALLBACK_SYMBOL, I64, [PTR, I64, I64, I64, I64, I64, I64])
    run = site.run  # type: ignore[attr-defined]
    if isinstance(run.type, ir.IntType):
        run = builder.inttoptr(run, PTR)
    code = encode_call(KIND_HELPER, helper_id, 0, site.pc)  # type: ignore[attr-defined]
    result = builder.call(function, [run, i64(code), *site.args])  # type: ignore[attr-defined]
    status = run_field(site, "status")
    failed = builder.append_basic_block("fallback.failed")
    ok = builder.append_basic_block("fallback.ok")
    builder.cbranch(builder.icmp_unsigned("!=", status, ir.Constant(I32, 0)), failed, ok)
    builder.position_at_end(failed)
    builder.ret(i64(0))
    builder.position_at_end(ok)
    return result


def native_or_fallback(
    site: object,
    use_native: ir.Value,
    native: Callable[[], ir.Value],
    helper_id: int,
    name: str,
) -> ir.Value:
    """r0 of `native()` where `use_native` holds, else of the Python helper `helper_id`.

    `native` emits the native path at the builder's position (in its own
    block) and returns its i64 result; the two results meet in one phi.
    """
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    native_block = b.append_basic_block(f"{name}.native")
    python_block = b.append_basic_block(f"{name}.python")
    done = b.append_basic_block(f"{name}.done")
    b.cbranch(use_native, native_block, python_block)
    b.position_at_end(native_block)
    native_result = native()
    native_end = b.block
    b.branch(done)
    b.position_at_end(python_block)
    python_result = emit_fallback(site, helper_id)
    python_end = b.block
    b.branch(done)
    b.position_at_end(done)
    result = b.phi(I64, f"{name}.r0")
    result.add_incoming(native_result, native_end)
    result.add_incoming(python_result, python_end)
    return result
