"""Native map and ring buffer helpers for JIT-compiled programs.

What the interpreter's helpers (`linux_helpers.maps`, `.ringbuf`) do
after their memory checks is one call of the map family's native
function; the JIT trusts the verifier for the checks and makes the same
call without entering Python:

* r1 names a map known at compile time (`HelperSite.r1_constant`): a
  direct call of the family's exported function, by symbol name (the
  symbol is checked to be the very function `Map.native` holds). Lookups
  in array and per-CPU array maps are inlined instead:
  ``index < max_entries ? values + index * value_block + cpu * value_stride : 0``
  (per-CPU: this run's CPU, 0 when it is not below `ncpus`, as the native
  lookup answers), with the header's fields read at run time so that no
  process-specific value is baked into the cached object.
* any other r1: the map's type (`MapHeader.type`) indexes `MAP_OPS`, a
  process-wide native table of the families' function addresses (a symbol
  added with `llvm.add_symbol`, filled from the live maps at compile
  time); an empty entry calls the Python helper (`emit_fallback`).

Per-CPU families get `run->cpu`, the others 0, exactly as the interpreter
passes `env.cpu` only to per-CPU maps.
"""

from __future__ import annotations

import ctypes
import errno

from llvmlite import ir

from ...elf.map_types import MapType
from ...platform.helper_ids import HelperId
from ...runtime.maps.array import ARRAY_NATIVE, ARRAY_PREFIX, PERCPU_ARRAY_PREFIX
from ...runtime.maps.header import MapHeader
from ...runtime.maps.header_ir import part
from ...runtime.maps.map_in_map import MAP_IN_MAP_LOOKUP, MAP_IN_MAP_NATIVE
from ...runtime.native.irblocks import I32, I64, i64, load, load_field
from .native_site import add_symbol, call_symbol, native_or_fallback, run_cpu

MAP_OPS_SYMBOL = "pybpf_jit_map_ops_v1"
"""The external symbol of `MAP_OPS` in compiled programs."""

MAX_MAP_TYPE = 64
"""Rows of `MAP_OPS` (BPF_MAP_TYPE_* numbers below this)."""

COLUMNS = (
    "lookup",
    "update",
    "delete",
    "percpu",
    "reserve",
    "output",
    "query",
    "submit",
    "discard",
)
"""Columns of one `MAP_OPS` row: native addresses, and 1 for per-CPU families.

Only the ring buffer's row has reserve .. discard; submit and discard take
a sample, not a map, so programs read them from that row directly.
"""
_COLUMN = {name: index for index, name in enumerate(COLUMNS)}

MAP_OPS = (ctypes.c_uint64 * (MAX_MAP_TYPE * len(COLUMNS)))()
"""Map type → native operations (0: not known here yet, use the fallback).

Filled by `fill_map_ops` (emitters call it when they compile a program;
an engine that loads programs from the disk cache, where no emitter
runs, should call it too, or those programs take the fallback path).
"""

_RINGBUF_ROW = int(MapType.RINGBUF) * len(COLUMNS)

_ARGS = {"lookup": 3, "update": 5, "delete": 2, "reserve": 3, "output": 4, "query": 2}
"""How many i64 arguments each native operation takes (after r1..r5 are mapped)."""

_MISSING = {"lookup": 0, "update": -errno.EINVAL, "delete": -errno.EINVAL}
"""What the interpreter's helper returns when the family has no such operation."""


def fill_map_ops(runtime: object) -> None:
    """Record the native operations of every live map's type in `MAP_OPS`.

    All maps of one type share one family class, hence the same functions.
    """
    maps = runtime.maps() if runtime is not None and hasattr(runtime, "maps") else []
    for map_ in maps:
        kind = int(map_.header.type)
        if kind >= MAX_MAP_TYPE:
            continue
        row = kind * len(COLUMNS)
        native = map_.native
        for op in ("lookup", "update", "delete"):
            MAP_OPS[row + _COLUMN[op]] = getattr(native, op, 0) or 0
        MAP_OPS[row + _COLUMN["percpu"]] = 1 if getattr(map_, "percpu", False) else 0
        ring = getattr(map_, "ringbuf_ops", None)
        if ring is not None:
            for op in ("reserve", "output", "query", "submit", "discard"):
                MAP_OPS[row + _COLUMN[op]] = getattr(ring, op)


# Resolvable from import on: cached objects name it without any emitter running.
add_symbol(MAP_OPS_SYMBOL, ctypes.addressof(MAP_OPS))


def known_map(site: object) -> object | None:
    """The live map r1 holds when the translator knows r1 statically, else None."""
    constant = site.r1_constant  # type: ignore[attr-defined]
    runtime = site.runtime  # type: ignore[attr-defined]
    if constant is None or runtime is None:
        return None
    for map_ in runtime.maps():
        if map_.address == constant:
            return map_
    return None


def _symbol(map_: object, op: str, address: int) -> str | None:
    """The exported symbol whose address is `address` (the map's `op`), or None."""
    # Imported here, where a program is compiled: a run from the disk cache needs no ring buffer.
    from ...runtime.maps.ringbuf import RINGBUF_NATIVE, RINGBUF_PREFIX, RingBufMap

    family = type(map_)
    candidates = [(getattr(family, "module", None), f"{getattr(family, 'prefix', '')}{op}")]
    if op == "lookup":
        candidates.append((MAP_IN_MAP_NATIVE, MAP_IN_MAP_LOOKUP))
    if isinstance(map_, RingBufMap):
        candidates.append((RINGBUF_NATIVE, f"{RINGBUF_PREFIX}{op}"))
    for module, symbol in candidates:
        if module is not None and module.exports(symbol) and module.address(symbol) == address:
            return symbol
    return None


def _map_args(site: object, op: str, percpu: bool | ir.Value) -> list[ir.Value]:
    """The native operation's arguments from r1..r5 (cpu last for lookup and update)."""
    b = site.builder  # type: ignore[attr-defined]
    r1, r2, r3, r4, _ = site.args  # type: ignore[attr-defined]
    if isinstance(percpu, bool):
        cpu = run_cpu(site) if percpu else i64(0)
    else:
        cpu = b.select(b.icmp_unsigned("!=", percpu, i64(0)), run_cpu(site), i64(0))
    if op == "lookup":
        return [r1, r2, cpu]
    if op == "update":
        return [r1, r2, r3, r4, cpu]
    if op == "delete":
        return [r1, r2]
    if op == "reserve":
        return [r1, r2, r3]
    if op == "output":
        return [r1, r2, r3, r4]
    return [r1, r2]  # query


def _inline_array_lookup(site: object, percpu: bool) -> ir.Value:
    """`bpf_map_lookup_elem` on an array (or per-CPU array) map, without a call."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    header, key = site.args[0], site.args[1]  # type: ignore[attr-defined]
    index = load(b, key, I32)
    inside = b.icmp_unsigned("<", index, load_field(b, MapHeader, header, "max_entries"))
    block = b.zext(load_field(b, MapHeader, header, "value_block"), I64)
    address = b.add(part(b, header, "values"), b.mul(b.zext(index, I64), block))
    if percpu:
        cpu = run_cpu(site)
        ncpus = b.zext(load_field(b, MapHeader, header, "ncpus"), I64)
        inside = b.and_(inside, b.icmp_unsigned("<", cpu, ncpus))
        stride = b.zext(load_field(b, MapHeader, header, "value_stride"), I64)
        address = b.add(address, b.mul(cpu, stride))
    return b.select(inside, address, i64(0))


def _static(site: object, map_: object, op: str) -> ir.Value | None:
    """The operation on a map known at compile time (None: let the translator fall back)."""
    if op in ("reserve", "output", "query"):
        ops = getattr(map_, "ringbuf_ops", None)
        address = getattr(ops, op, 0) if ops is not None else 0
        if not address:
            return None  # not a ring buffer: the Python helper raises the fault
    else:
        address = getattr(map_.native, op, 0)  # type: ignore[attr-defined]
        if not address:
            return i64(_MISSING[op])
    percpu = bool(getattr(map_, "percpu", False))
    if op == "lookup" and type(map_).module is ARRAY_NATIVE:
        for prefix, is_percpu in ((ARRAY_PREFIX, False), (PERCPU_ARRAY_PREFIX, True)):
            if address == ARRAY_NATIVE.address(f"{prefix}lookup"):
                return _inline_array_lookup(site, is_percpu)
    symbol = _symbol(map_, op, address)
    if symbol is None:
        return None
    return call_symbol(site, symbol, _map_args(site, op, percpu))


def _table(site: object) -> ir.Value:
    """The address of `MAP_OPS` in the program's module (as i64)."""
    module: ir.Module = site.module  # type: ignore[attr-defined]
    table = module.globals.get(MAP_OPS_SYMBOL)
    if table is None:
        table = ir.GlobalVariable(module, ir.ArrayType(I64, len(MAP_OPS)), name=MAP_OPS_SYMBOL)
    return site.builder.ptrtoint(table, I64)  # type: ignore[attr-defined]


def _call_or_fallback(
    site: object, target: ir.Value, args: list[ir.Value], helper_id: int, name: str
) -> ir.Value:
    """Call native `target` with `args` when it is not 0, else the Python helper."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]

    def call() -> ir.Value:
        kind = ir.FunctionType(I64, [I64] * len(args))
        return b.call(b.inttoptr(target, kind.as_pointer()), args)

    return native_or_fallback(site, b.icmp_unsigned("!=", target, i64(0)), call, helper_id, name)


def _dynamic(site: object, op: str, helper_id: int) -> ir.Value:
    """The operation through `MAP_OPS`, indexed by the map header's type."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    fill_map_ops(site.runtime)  # type: ignore[attr-defined]
    base = _table(site)
    kind = b.zext(load_field(b, MapHeader, site.args[0], "type"), I64)  # type: ignore[attr-defined]
    known = b.icmp_unsigned("<", kind, i64(MAX_MAP_TYPE))
    # An out-of-range type reads row 0 (never past the table) and falls back.
    row = b.add(base, b.mul(b.select(known, kind, i64(0)), i64(8 * len(COLUMNS))))
    target = b.select(known, load(b, b.add(row, i64(8 * _COLUMN[op])), I64), i64(0))
    percpu = load(b, b.add(row, i64(8 * _COLUMN["percpu"])), I64)
    return _call_or_fallback(site, target, _map_args(site, op, percpu), helper_id, f"map.{op}")


def _emitter(op: str, helper_id: int):
    def emit(site: object) -> ir.Value | None:
        map_ = known_map(site)
        if map_ is not None:
            return _static(site, map_, op)
        return _dynamic(site, op, helper_id)

    emit.__name__ = f"emit_map_{op}"
    emit.__doc__ = f"Native `{op}` of the map in r1 (see the module docstring)."
    return emit


def _emit_commit(op: str, helper_id: int):
    def emit(site: object) -> ir.Value:
        # The sample pointer alone finds its ring (pg_off in the record
        # header), so no map is involved. The function comes from the ring
        # buffer's `MAP_OPS` row: naming its symbol could leave a cached
        # object unresolvable in a process that has no ring buffer yet.
        b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
        fill_map_ops(site.runtime)  # type: ignore[attr-defined]
        slot = b.add(_table(site), i64(8 * (_RINGBUF_ROW + _COLUMN[op])))
        args = list(site.args[:2])  # type: ignore[attr-defined]
        _call_or_fallback(site, load(b, slot, I64), args, helper_id, f"ringbuf.{op}")
        return i64(0)  # the helper's result, always

    emit.__name__ = f"emit_ringbuf_{op}"
    emit.__doc__ = f"Native `bpf_ringbuf_{op}` (returns 0 as the helper does)."
    return emit


EMITTERS = {
    HelperId.MAP_LOOKUP_ELEM: _emitter("lookup", HelperId.MAP_LOOKUP_ELEM),
    HelperId.MAP_UPDATE_ELEM: _emitter("update", HelperId.MAP_UPDATE_ELEM),
    HelperId.MAP_DELETE_ELEM: _emitter("delete", HelperId.MAP_DELETE_ELEM),
    HelperId.RINGBUF_RESERVE: _emitter("reserve", HelperId.RINGBUF_RESERVE),
    HelperId.RINGBUF_OUTPUT: _emitter("output", HelperId.RINGBUF_OUTPUT),
    HelperId.RINGBUF_QUERY: _emitter("query", HelperId.RINGBUF_QUERY),
    HelperId.RINGBUF_SUBMIT: _emit_commit("submit", HelperId.RINGBUF_SUBMIT),
    HelperId.RINGBUF_DISCARD: _emit_commit("discard", HelperId.RINGBUF_DISCARD),
}
"""Helper id → emitter, for `helpers_ir` to register."""
