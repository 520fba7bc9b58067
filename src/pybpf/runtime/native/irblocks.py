"""IR building blocks shared by the runtime's native code.

Map families write their operations as LLVM IR with llvmlite; the pieces
they all need live here: integer and pointer types, fields of a ctypes
`Structure` addressed from IR (so the struct layout has one definition, the
ctypes one), counted loops, memory intrinsics, byte comparison, FNV-1a
hashing and a spinlock built on `cmpxchg`.

Addresses travel as `i64` everywhere (as eBPF registers hold them) and are
turned into pointers only at the load or store, which keeps the IR free of
pointer arithmetic on typed pointers.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()


def i32(value: int) -> ir.Constant:
    """An `i32` constant."""
    return ir.Constant(I32, value)


def i64(value: int) -> ir.Constant:
    """An `i64` constant."""
    return ir.Constant(I64, value)


def errno(code: int) -> ir.Constant:
    """`-code` as the `i64` a native map operation returns on failure."""
    return ir.Constant(I64, -code)


def pointer(builder: ir.IRBuilder, address: ir.Value) -> ir.Value:
    """The `ptr` for an `i64` address."""
    return builder.inttoptr(address, PTR)


def offset(builder: ir.IRBuilder, address: ir.Value, delta: int | ir.Value) -> ir.Value:
    """`address + delta` as `i64` (delta widened to i64 when it is an IR value)."""
    if isinstance(delta, int):
        if delta == 0:
            return address
        delta = i64(delta)
    elif delta.type != I64:
        delta = builder.zext(delta, I64)
    return builder.add(address, delta)


def load(builder: ir.IRBuilder, address: ir.Value, kind: ir.IntType) -> ir.Value:
    """Load an integer of type `kind` from `i64` address."""
    return builder.load(pointer(builder, address), typ=kind)


def store(builder: ir.IRBuilder, value: ir.Value, address: ir.Value) -> None:
    """Store `value` at `i64` address."""
    builder.store(value, pointer(builder, address))


def _field(struct: type[ctypes.Structure], name: str) -> tuple[int, ir.IntType]:
    descriptor = getattr(struct, name)
    return descriptor.offset, ir.IntType(descriptor.size * 8)


def field_address(
    builder: ir.IRBuilder, struct: type[ctypes.Structure], base: ir.Value, name: str
) -> ir.Value:
    """The `i64` address of field `name` of a ctypes `struct` at `base`."""
    field_offset, _ = _field(struct, name)
    return offset(builder, base, field_offset)


def load_field(
    builder: ir.IRBuilder, struct: type[ctypes.Structure], base: ir.Value, name: str
) -> ir.Value:
    """Load integer field `name` of the ctypes `struct` at `base`."""
    field_offset, kind = _field(struct, name)
    return load(builder, offset(builder, base, field_offset), kind)


def store_field(
    builder: ir.IRBuilder,
    struct: type[ctypes.Structure],
    base: ir.Value,
    name: str,
    value: ir.Value,
) -> None:
    """Store `value` into integer field `name` of the ctypes `struct` at `base`."""
    field_offset, _ = _field(struct, name)
    store(builder, value, offset(builder, base, field_offset))


def widen(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """Zero-extend an integer to `i64` (no-op for `i64`)."""
    return value if value.type == I64 else builder.zext(value, I64)


@contextmanager
def counted_loop(builder: ir.IRBuilder, start: ir.Value, stop: ir.Value) -> Iterator[ir.Value]:
    """`for i in range(start, stop)`: the body is emitted inside the `with`.

    Yields the loop index (the type of `start`). The body may branch to
    other blocks and return, as long as it ends positioned in a block that
    falls through to the next iteration.
    """
    entry = builder.block
    cond = builder.append_basic_block("loop.cond")
    body = builder.append_basic_block("loop.body")
    done = builder.append_basic_block("loop.done")
    builder.branch(cond)
    builder.position_at_end(cond)
    index = builder.phi(start.type, "i")
    index.add_incoming(start, entry)
    builder.cbranch(builder.icmp_unsigned("<", index, stop), body, done)
    builder.position_at_end(body)
    yield index
    following = builder.add(index, ir.Constant(start.type, 1))
    index.add_incoming(following, builder.block)
    builder.branch(cond)
    builder.position_at_end(done)


def memcpy(builder: ir.IRBuilder, dst: ir.Value, src: ir.Value, size: ir.Value) -> None:
    """Copy `size` bytes between `i64` addresses (llvm.memcpy: no overlap)."""
    function = builder.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    builder.call(
        function,
        [pointer(builder, dst), pointer(builder, src), widen(builder, size), ir.Constant(I1, 0)],
    )


def memset(builder: ir.IRBuilder, dst: ir.Value, byte: int, size: ir.Value) -> None:
    """Fill `size` bytes at `i64` address `dst` with `byte` (llvm.memset)."""
    function = builder.module.declare_intrinsic("llvm.memset", [PTR, I64])
    builder.call(
        function,
        [pointer(builder, dst), ir.Constant(I8, byte), widen(builder, size), ir.Constant(I1, 0)],
    )


def branch(builder: ir.IRBuilder, condition: ir.Value, name: str) -> tuple[ir.Block, ir.Block]:
    """Two new blocks `name.yes`/`name.no`, branched to on `condition`.

    The builder stays where it was (after the branch); position it in
    either block to fill it.
    """
    function = builder.function
    yes = function.append_basic_block(f"{name}.yes")
    no = function.append_basic_block(f"{name}.no")
    builder.cbranch(condition, yes, no)
    return yes, no


def return_if(builder: ir.IRBuilder, condition: ir.Value, result: ir.Value, name: str) -> None:
    """Return `result` when `condition` holds; the builder continues on the other path."""
    leave, stay = branch(builder, condition, name)
    builder.position_at_end(leave)
    builder.ret(result)
    builder.position_at_end(stay)


def _internal(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    function = ir.Function(module, ir.FunctionType(ret, args), name=name)
    function.linkage = "internal"
    return function


def bytes_equal(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, size: ir.Value) -> ir.Value:
    """`i1`: the `size` bytes at `i64` addresses `a` and `b` are equal.

    There is no memcmp intrinsic, and calling libc's would tie the objects
    to a symbol resolver; keys are short, so a byte loop is enough.
    """
    module = builder.module
    name = "pybpf.bytes_equal"
    try:
        function = module.get_global(name)
    except KeyError:
        function = _internal(module, name, I1, [I64, I64, I64])
        x, y, n = function.args
        inner = ir.IRBuilder(function.append_basic_block("entry"))
        differ = function.append_basic_block("differ")
        with counted_loop(inner, i64(0), n) as i:
            left = load(inner, inner.add(x, i), I8)
            right = load(inner, inner.add(y, i), I8)
            same = inner.append_basic_block("same")
            inner.cbranch(inner.icmp_unsigned("!=", left, right), differ, same)
            inner.position_at_end(same)
        inner.ret(ir.Constant(I1, 1))
        inner.position_at_end(differ)
        inner.ret(ir.Constant(I1, 0))
    return builder.call(function, [a, b, widen(builder, size)])


FNV_OFFSET = 2166136261
FNV_PRIME = 16777619


def fnv1a(builder: ir.IRBuilder, data: ir.Value, size: ir.Value) -> ir.Value:
    """The 32-bit FNV-1a hash of `size` bytes at `i64` address `data`, as `i32`."""
    module = builder.module
    name = "pybpf.fnv1a"
    try:
        function = module.get_global(name)
    except KeyError:
        function = _internal(module, name, I32, [I64, I64])
        base, n = function.args
        inner = ir.IRBuilder(function.append_basic_block("entry"))
        state = inner.alloca(I32)
        inner.store(i32(FNV_OFFSET), state)
        with counted_loop(inner, i64(0), n) as i:
            byte = inner.zext(load(inner, inner.add(base, i), I8), I32)
            mixed = inner.mul(inner.xor(inner.load(state), byte), i32(FNV_PRIME))
            inner.store(mixed, state)
        inner.ret(inner.load(state))
    return builder.call(function, [data, widen(builder, size)])


def spin_lock(builder: ir.IRBuilder, word: ir.Value) -> None:
    """Take the spinlock at `i64` address `word` (an `i32`: 0 free, 1 held).

    Test-and-test-and-set: spin on a plain atomic load so that waiting
    threads do not bounce the cache line with failed `cmpxchg`es.
    """
    target = pointer(builder, word)
    attempt = builder.append_basic_block("lock.try")
    wait = builder.append_basic_block("lock.wait")
    held = builder.append_basic_block("lock.held")
    builder.branch(attempt)
    builder.position_at_end(attempt)
    result = builder.cmpxchg(target, i32(0), i32(1), "acquire", "monotonic")
    builder.cbranch(builder.extract_value(result, 1), held, wait)
    builder.position_at_end(wait)
    current = builder.load_atomic(target, "monotonic", 4, typ=I32)
    builder.cbranch(builder.icmp_unsigned("==", current, i32(0)), attempt, wait)
    builder.position_at_end(held)


def spin_unlock(builder: ir.IRBuilder, word: ir.Value) -> None:
    """Release the spinlock at `i64` address `word`."""
    # An `xchg` rather than a release store: llvmlite's store_atomic does
    # not handle opaque pointers.
    builder.atomic_rmw("xchg", pointer(builder, word), i32(0), "release")


def define(
    module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type], internal: bool = False
) -> tuple[ir.Function, ir.IRBuilder]:
    """A new function `name` in `module` and a builder at its entry block."""
    function = ir.Function(module, ir.FunctionType(ret, args), name=name)
    if internal:
        function.linkage = "internal"
    return function, ir.IRBuilder(function.append_basic_block("entry"))
