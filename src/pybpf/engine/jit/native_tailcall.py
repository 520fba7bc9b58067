"""Native `bpf_tail_call` for JIT-compiled programs: JIT → JIT without entering Python.

`bpf_tail_call(ctx, prog_array, index)` as the interpreter's helper
(`linux_helpers.maps.tail_call`) does it, with the same results:

* r2 not a prog_array: the Python helper (it returns -EINVAL or faults);
* index (u32) ≥ max_entries: -E2BIG;
* the slot (one u64, see `runtime.maps.prog_array`): 0 (empty) gives
  -ENOENT; a marked slot (high word set: the id does not name the stored
  program in the context) goes to the Python helper;
* the id's entry in the execution context's native entry table
  (`RunState.tail_table`, word 0 the table's length): 0 (the target runs
  in the interpreter, is not built yet, or is closed; or the id is past
  the table) goes to the Python helper, which builds the target if need
  be and raises `TailCall` as it always did (the next run finds the
  entry);
* `run->tail_calls` ≥ `MAX_TAIL_CALLS`: -ELOOP;
* the run's stack has no room for the target's 8 frames from the calling
  function's frame on (`RunState.stack_last`): the Python helper;
* else the tail call is made, as Linux does it: the target replaces the
  frame of the function that made the call (the entry function, a
  subprogram or a callback), not the whole run. `tail_calls += 1`,
  `tail_target = id`, `stack_top0` moves to the calling function's frame,
  and the target's entry function runs as ``f(run->ctx, 0, 0, 0, 0,
  depth 0, run)`` (the context pointer the run started with). Then
  `stack_top0` and `tail_target` are restored and the calling function
  returns the target's r0 to its own caller (a subprogram's caller goes
  on; the entry function's r0 is the run's). The counter is the run's,
  shared by every chain (MAX_TAIL_CALLS in all, as Linux's
  tail_call_cnt_ptr).

When the Python helper makes the call, the fallback runs the chain
(`common.tail_call_in_frame`, the targets on stacks of their own), sets
`tail_r0` and `status` = `STATUS_TAIL_DONE`; the call site clears the
status and returns `tail_r0` from its function, as above.

No address is baked into the IR: the table comes from the `RunState`.
"""

from __future__ import annotations

import errno

from llvmlite import ir

from ...elf.map_types import MapType
from ...platform.helper_ids import HelperId
from ...runtime.helpers import MAX_TAIL_CALLS
from ...runtime.maps.header import MapHeader
from ...runtime.maps.header_ir import part
from ...runtime.native.irblocks import I32, I64, PTR, i64, load, load_field
from ..translate import MAX_DEPTH
from .abi import STATUS_TAIL_DONE
from .native_site import declare, run_field, store_run_field


def emit_tail_call(site: object) -> ir.Value | None:
    """Native `bpf_tail_call` (see the module docstring); None without an execution context."""
    if site.runtime is None:  # type: ignore[attr-defined]
        return None  # no prog_array can exist: the Python helper says what happens
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    function = b.function
    prog_array, index_arg = site.args[1], site.args[2]  # type: ignore[attr-defined]

    def block(name: str) -> ir.Block:
        return function.append_basic_block(f"tail.{name}")

    python, done = block("python"), block("done")
    results: list[tuple[ir.Value, ir.Block]] = []

    def give(value: int) -> None:
        # The current block ends the helper with result `value`.
        results.append((i64(value), b.block))
        b.branch(done)

    def check(condition: ir.Value, name: str, failed: ir.Block | int) -> None:
        # Continue in a new block when `condition` is false; else go to `failed`.
        go_on = block(name)
        if isinstance(failed, int):
            result = block(f"{name}.fail")
            b.cbranch(condition, result, go_on)
            b.position_at_end(result)
            give(failed)
        else:
            b.cbranch(condition, failed, go_on)
        b.position_at_end(go_on)

    kind = load_field(b, MapHeader, prog_array, "type")
    check(b.icmp_unsigned("!=", kind, ir.Constant(I32, int(MapType.PROG_ARRAY))), "map", python)
    index = b.and_(index_arg, i64(0xFFFFFFFF))
    entries = b.zext(load_field(b, MapHeader, prog_array, "max_entries"), I64)
    check(b.icmp_unsigned(">=", index, entries), "index", -errno.E2BIG)
    stride = b.zext(load_field(b, MapHeader, prog_array, "value_block"), I64)
    values = part(b, prog_array, "values")
    slot = load(b, b.add(values, b.mul(index, stride)), I64)
    check(b.icmp_unsigned("==", slot, i64(0)), "slot", -errno.ENOENT)
    check(b.icmp_unsigned(">", slot, i64(0xFFFFFFFF)), "marker", python)
    table = run_field(site, "tail_table")
    check(b.icmp_unsigned("==", table, i64(0)), "table", python)
    check(b.icmp_unsigned(">=", slot, load(b, table, I64)), "known", python)
    entry = load(b, b.add(table, b.mul(slot, i64(8))), I64)
    check(b.icmp_unsigned("==", entry, i64(0)), "entry", python)
    calls = run_field(site, "tail_calls")
    check(b.icmp_unsigned(">=", calls, ir.Constant(I32, MAX_TAIL_CALLS)), "limit", -errno.ELOOP)

    # The tail call: the target replaces this function's frame. It runs on
    # the same RunState, its frame 0 where this function's frame is
    # (`stack_top0` moved by `depth` frames while it runs), if the run's
    # stack has room for the target's 8 frames there; else Python runs it
    # on a stack of its own.
    run = site.run  # type: ignore[attr-defined]
    if isinstance(run.type, ir.IntType):
        run = b.inttoptr(run, PTR)
    top0 = run_field(site, "stack_top0")
    stride = run_field(site, "stack_stride")
    base = b.add(top0, b.mul(site.depth, stride))  # type: ignore[attr-defined]
    last = b.add(base, b.mul(stride, i64(MAX_DEPTH - 1)))
    check(b.icmp_unsigned(">", last, run_field(site, "stack_last")), "room", python)
    store_run_field(site, "tail_calls", b.add(calls, ir.Constant(I32, 1)))
    caller = run_field(site, "tail_target")
    store_run_field(site, "tail_target", slot)
    store_run_field(site, "stack_top0", base)
    target_type = ir.FunctionType(I64, [I64] * 6 + [PTR])
    target = b.inttoptr(entry, target_type.as_pointer())
    zero = i64(0)
    r0 = b.call(target, [run_field(site, "ctx"), zero, zero, zero, zero, zero, run])
    store_run_field(site, "stack_top0", top0)
    store_run_field(site, "tail_target", caller)
    _return_chain(site, r0)

    # Cases only the Python helper knows: it returns a result, or runs the
    # chain itself (status STATUS_TAIL_DONE, the chain's r0 in `tail_r0`).
    b.position_at_end(python)
    from .fallback import FALLBACK_SYMBOL, KIND_HELPER, encode_call, register_symbol

    register_symbol()
    module = site.module  # type: ignore[attr-defined]
    fallback = declare(module, FALLBACK_SYMBOL, I64, [PTR, I64, I64, I64, I64, I64, I64])
    code = encode_call(KIND_HELPER, int(HelperId.TAIL_CALL), 0, site.pc)  # type: ignore[attr-defined]
    code_value = b.or_(b.shl(site.depth, i64(32)), i64(code))  # type: ignore[attr-defined]
    result = b.call(fallback, [run, code_value, *site.args])  # type: ignore[attr-defined]
    status = run_field(site, "status")
    chained, returned = block("chained"), block("returned")
    b.cbranch(b.icmp_unsigned("==", status, ir.Constant(I32, STATUS_TAIL_DONE)), chained, returned)
    b.position_at_end(chained)
    store_run_field(site, "status", ir.Constant(I32, 0))
    b.ret(run_field(site, "tail_r0"))
    b.position_at_end(returned)
    failed, went_on = block("failed"), block("result")
    b.cbranch(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), failed, went_on)
    b.position_at_end(failed)
    b.ret(zero)  # the Python helper raised: unwind
    b.position_at_end(went_on)
    results.append((result, b.block))
    b.branch(done)

    b.position_at_end(done)
    phi = b.phi(I64, "tail.r0")
    for value, source in results:
        phi.add_incoming(value, source)
    return phi


def _return_chain(site: object, r0: ir.Value) -> None:
    # After the target returned: this function returns its r0, unless the
    # run stopped inside (a Python helper raised: unwind with 0).
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    function = b.function
    finish, leave = (
        function.append_basic_block("tail.finish"),
        function.append_basic_block("tail.leave"),
    )
    status = run_field(site, "status")
    b.cbranch(b.icmp_unsigned("==", status, ir.Constant(I32, 0)), finish, leave)
    b.position_at_end(finish)
    b.ret(r0)
    b.position_at_end(leave)
    b.ret(i64(0))


EMITTERS = {HelperId.TAIL_CALL: emit_tail_call}
"""Helper id → emitter, for `helpers_ir` to register."""
