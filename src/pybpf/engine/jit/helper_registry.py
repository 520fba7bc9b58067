"""Native emitters for helper calls: how the JIT turns `call imm` into inline IR.

The translator asks `NATIVE_EMITTERS[helper_id]` (if any) at every call of
a helper that exists in the program's `HelperTable`. An emitter gets a
`HelperSite` and either emits IR computing r0 and returns it (an `i64`),
or returns None: then the translator emits the generic call through the
Python fallback (see `abi`).

Emitters are registered at import time by `engine.jit.helpers_ir`, which
the translator imports lazily; without it every helper goes through the
fallback.

Compiled programs are cached on disk keyed by the program's bytes (see
`engine.jit.compile`), so an emitter must not bake process-specific
values (addresses of Python objects, of native functions) into the IR as
constants: resolve them through `llvm.add_symbol` or read them from the
`RunState` at run time.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llvmlite import ir


@dataclass(slots=True)
class HelperSite:
    """One `call imm` site, as an emitter sees it.

    `builder` is positioned where the call goes (an emitter may add blocks;
    the translator continues at wherever `builder` is left); `module` the
    program's `ir.Module`; `args` r1..r5 as `i64` values; `run` the
    `RunState*` argument of the function; `runtime` the `ExecutionContext`
    (or None); `helpers` the program's `HelperTable`; `pc` the call's pc;
    `r1_constant` the value of r1 when the translator knows it statically
    (an `lddw`/`mov` to r1 earlier in the same basic block with no other
    write to r1 in between), else None; `run_type` the LLVM struct type of
    `RunState` (GEP with `abi.RUN_FIELD[name]`); `depth` the calling
    function's frame depth (an `i64` value).
    """

    builder: ir.IRBuilder
    module: ir.Module
    args: list[ir.Value]
    run: ir.Value
    runtime: Any
    helpers: Any
    pc: int
    r1_constant: int | None
    run_type: ir.Type
    depth: ir.Value | None = None


Emitter = Callable[[HelperSite], "ir.Value | None"]
"""``emitter(site) -> r0 (i64) | None`` (None: use the Python fallback)."""

NATIVE_EMITTERS: dict[int, Emitter] = {}
"""Helper id → emitter; filled by `register`."""


def register(helper_id: int, emitter: Emitter) -> Emitter:
    """Make `emitter` handle calls of helper `helper_id` (replacing an earlier one).

    Returns the emitter, so this can be used as a decorator factory's core.
    """
    NATIVE_EMITTERS[helper_id] = emitter
    return emitter


_loaded = False
_linux_impls: dict[int, Any] | None = None


def emitter_for(helpers: Any, helper_id: int) -> Emitter | None:
    """The emitter for a call of `helper_id` in a program with table `helpers`, or None.

    A helper with a native implementation of its own (`HelperSpec.native`,
    an extension's) is called directly. Otherwise emitters implement the
    Linux helpers, so one is used only when the table's entry is the Linux
    implementation itself: a table that gives an id its own meaning (the
    conformance suite's helper 5, a test's probe) keeps it, through the
    fallback.
    """
    global _linux_impls
    spec = helpers.get(helper_id)
    if spec is not None and getattr(spec, "native", None) is not None:
        return _native_function_emitter(helper_id, spec.native)
    emitter = load_emitters().get(helper_id)
    if emitter is None or spec is None:
        return None
    if _linux_impls is None:
        from ...runtime.linux_helpers import helper_specs

        _linux_impls = {s.id: s.impl for s in helper_specs()}
    return emitter if _linux_impls.get(helper_id) is spec.impl else None


def native_helper_symbol(helper_id: int) -> str:
    """The symbol the IR calls a natively implemented helper by."""
    return f"pybpf_native_helper_{helper_id:x}"


def add_native_symbols(helpers: Any) -> None:
    """Resolve the symbols of the natively implemented helpers in `helpers` to their
    addresses, before a module that may call them is linked (also one loaded from the
    disk cache, whose IR was never built in this process)."""
    from .native_site import add_symbol

    for spec in helpers:
        if getattr(spec, "native", None) is not None:
            add_symbol(native_helper_symbol(spec.id), spec.native)


def _native_function_emitter(helper_id: int, address: int) -> Emitter:
    """An emitter calling the native function at `address` with r1..r5 (a helper an
    extension implements natively). The IR names a symbol per helper id, resolved to the
    address when the module is linked (`add_native_symbols`), so cached objects stay
    process-independent."""
    from .native_site import add_symbol, call_symbol

    symbol = native_helper_symbol(helper_id)

    def emit(site: HelperSite) -> ir.Value:
        add_symbol(symbol, address)
        return call_symbol(site, symbol, site.args)

    return emit


def load_emitters() -> dict[int, Emitter]:
    """Import `engine.jit.helpers_ir` once (if it exists) and return the registry."""
    global _loaded
    if not _loaded:
        _loaded = True
        try:
            # Registers its emitters on import.
            importlib.import_module(f"{__package__}.helpers_ir")
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.helpers_ir":
                warnings.warn(f"native helpers unavailable: {error}", stacklevel=2)
        except ImportError as error:  # present but broken: run, but say so
            warnings.warn(f"native helpers unavailable: {error}", stacklevel=2)
    return NATIVE_EMITTERS
