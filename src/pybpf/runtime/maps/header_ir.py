"""IR building blocks over `MapHeader`, shared by the map families.

`native.irblocks` knows IR and nothing about maps; this module knows the
map header's fields and the conventions every family's native operations
follow: element and value addresses, per-CPU slots, the checks on `cpu`
and on update flags, operations run under the map's spinlock, and the
`NativeModule` of a set of families with their fast-call entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from llvmlite import ir

from ..native import NativeModule
from ..native.irblocks import (
    I32,
    branch,
    define,
    errno,
    field_address,
    i32,
    i64,
    load_field,
    memcpy,
    pointer,
    return_if,
    spin_lock,
    spin_unlock,
    widen,
)
from .base import prototypes
from .fastcall import add_entry_points, entry_prototypes
from .header import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, MapHeader

Prelude = Callable[[ir.IRBuilder, ir.Function], None]
"""Checks emitted at the start of an exported operation, before it locks."""


def part(
    b: ir.IRBuilder, header: ir.Value, name: str, struct: type[MapHeader] = MapHeader
) -> ir.Value:
    """Address of the storage part whose offset from the header is field `name`.

    Maps hold offsets, not addresses, so that a region mapped at another
    address in another process works unchanged (see `shared`).
    """
    return b.add(header, load_field(b, struct, header, name))


def element(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    """Address of record `index` in the `elems` table (`elem_size` bytes apart)."""
    size = widen(b, load_field(b, MapHeader, header, "elem_size"))
    return b.add(part(b, header, "elems"), b.mul(widen(b, index), size))


def value_block(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    """Address of entry `index`'s value block (CPU 0's value for per-CPU maps)."""
    block = widen(b, load_field(b, MapHeader, header, "value_block"))
    return b.add(part(b, header, "values"), b.mul(widen(b, index), block))


def cpu_slot(b: ir.IRBuilder, header: ir.Value, block: ir.Value, cpu: ir.Value) -> ir.Value:
    """Address of CPU `cpu`'s value inside a value block (cpu < 0 means CPU 0)."""
    stride = widen(b, load_field(b, MapHeader, header, "value_stride"))
    cpu = b.select(b.icmp_signed("<", cpu, i64(0)), i64(0), cpu)
    return b.add(block, b.mul(cpu, stride))


def check_cpu(b: ir.IRBuilder, header: ir.Value, cpu: ir.Value, failure: ir.Value) -> None:
    """Return `failure` when `cpu` is not below the map's `ncpus` (negative passes)."""
    ncpus = widen(b, load_field(b, MapHeader, header, "ncpus"))
    return_if(b, b.icmp_signed(">=", cpu, ncpus), failure, "cpu")


def copy_value(
    b: ir.IRBuilder,
    header: ir.Value,
    block: ir.Value,
    value: ir.Value,
    cpu: ir.Value,
    percpu: bool,
) -> None:
    """Copy an update's `value` into a value block.

    Per-CPU maps take every CPU's value when `cpu < 0` (the syscall view)
    and one CPU's otherwise; `cpu` must already be checked.
    """
    value_size = load_field(b, MapHeader, header, "value_size")
    if not percpu:
        memcpy(b, block, value, value_size)
        return
    every, one = branch(b, b.icmp_signed("<", cpu, i64(0)), "all")
    done = b.function.append_basic_block("copied")
    b.position_at_end(every)
    memcpy(b, block, value, load_field(b, MapHeader, header, "value_block"))
    b.branch(done)
    b.position_at_end(one)
    memcpy(b, cpu_slot(b, header, block, cpu), value, value_size)
    b.branch(done)
    b.position_at_end(done)


def check_update_flags(b: ir.IRBuilder, function: ir.Function, flags: ir.Value) -> None:
    """Return EINVAL for BPF_F_LOCK or flags above BPF_EXIST (kernel order).

    BPF_F_LOCK needs a bpf_spin_lock in the value (described by BTF), which
    is not modelled yet, so it is refused the way the kernel refuses it for
    a value without one.
    """
    bad = b.or_(
        b.icmp_unsigned("!=", b.and_(flags, i64(BPF_F_LOCK)), i64(0)),
        b.icmp_unsigned(">", flags, i64(BPF_EXIST)),
    )
    return_if(b, bad, errno(EINVAL), "flags")


def split_on_existence(
    b: ir.IRBuilder, exists: ir.Value, flags: ir.Value
) -> tuple[ir.Block, ir.Block]:
    """The update paths for an existing key and a new one, as Linux checks them.

    BPF_NOEXIST on an existing key returns EEXIST, BPF_EXIST on a missing
    one ENOENT. Returns the (replace, create) blocks; the builder is left
    in neither.
    """
    present, absent = branch(b, exists, "exists")
    b.position_at_end(present)
    return_if(b, b.icmp_unsigned("==", flags, i64(BPF_NOEXIST)), errno(EEXIST), "noexist")
    replace = b.block
    b.position_at_end(absent)
    return_if(b, b.icmp_unsigned("==", flags, i64(BPF_EXIST)), errno(ENOENT), "exist")
    return replace, b.block


@contextmanager
def map_lock(b: ir.IRBuilder, header: ir.Value) -> Iterator[None]:
    """Hold the map's spinlock over the IR emitted inside the `with`.

    The body must fall through to the end of the `with` (a `ret` inside it
    would leave the lock held).
    """
    lock = field_address(b, MapHeader, header, "lock")
    seq = pointer(b, field_address(b, MapHeader, header, "seq"))
    spin_lock(b, lock)
    # Odd while the body runs; the fences order the body's stores after the first
    # bump and before the second, as a seqlock writer's smp_wmb.
    b.atomic_rmw("add", seq, i32(1), "monotonic")
    b.fence("release")
    yield
    b.fence("release")
    b.atomic_rmw("add", seq, i32(1), "monotonic")
    spin_unlock(b, lock)


def locked(
    module: ir.Module, name: str, inner: ir.Function, prelude: Prelude | None = None
) -> None:
    """Exported `name`: run `prelude` checks, then `inner` under the map lock.

    `inner` takes the same arguments (the map header first) and returns
    the operation's result, which `name` returns after unlocking.
    """
    function, b = define(module, name, inner.function_type.return_type, inner.function_type.args)
    if prelude is not None:
        prelude(b, function)
    with map_lock(b, function.args[0]):
        result = b.call(inner, list(function.args))
    b.ret(result)


def read_locklessly(module: ir.Module, name: str, inner: ir.Function) -> None:
    """Exported `name`: run `inner` (a pure reader) without the lock, as a seqlock reader.

    Read `seq` (waiting while odd: a writer runs), run `inner`, read `seq`
    again; if it moved, a writer ran beside the read, so run it again.
    `inner` must tolerate a concurrent writer (bounded loops, no stores): its
    result is only used once the two reads agree. Readers never write the
    map's cache lines, so lookups on many threads scale as the kernel's RCU
    lookups do.
    """
    function, b = define(module, name, inner.function_type.return_type, inner.function_type.args)
    seq = pointer(b, field_address(b, MapHeader, function.args[0], "seq"))
    start = function.append_basic_block("read.start")
    run = function.append_basic_block("read.run")
    b.branch(start)
    b.position_at_end(start)
    before = b.load_atomic(seq, "acquire", 4, typ=I32)
    writing = b.icmp_unsigned("!=", b.and_(before, i32(1)), i32(0))
    b.cbranch(writing, start, run)
    b.position_at_end(run)
    result = b.call(inner, list(function.args))
    b.fence("acquire")
    after = b.load_atomic(seq, "monotonic", 4, typ=I32)
    done = function.append_basic_block("read.done")
    b.cbranch(b.icmp_unsigned("==", before, after), done, start)
    b.position_at_end(done)
    b.ret(result)


def families_native(
    name: str, build: Callable[[ir.Module], None], families: Sequence[tuple[str, bool]]
) -> NativeModule:
    """The `NativeModule` of map families given as `(prefix, percpu)` pairs.

    `build` adds the common operations of every family; the fast-call entry
    points are added after it, and the prototypes cover both.
    """

    def build_module(module: ir.Module) -> None:
        build(module)
        for prefix, percpu in families:
            add_entry_points(module, prefix, percpu)

    functions: dict = {}
    for prefix, percpu in families:
        functions.update(prototypes(prefix))
        functions.update(entry_prototypes(prefix, percpu=percpu))
    return NativeModule(name, build_module, functions)
