"""BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK, native code and Python class.

Semantics follow kernel/bpf/queue_stack_maps.c: no keys (key_size 0),
`push(value, flags)` with BPF_ANY fails with E2BIG on a full map and with
BPF_EXIST drops the oldest element to make room (for a stack too);
BPF_NOEXIST or unknown flags are EINVAL. `pop` and `peek` take from the
oldest end of a queue and the newest end of a stack, ENOENT when empty.
The key-based operations are what the kernel gives programs: lookup
returns NULL, delete and get_next_key EINVAL; `update` is a push, as the
`bpf()` syscall's update is for these maps.

Storage is the map's value region used as a ring of `max_entries` slots
`value_stride` bytes apart. The header's `next_fresh` holds the ring index
of the oldest element and `count` the number of elements (the kernel
keeps `max_entries + 1` slots with head and tail indices instead; the
observable behaviour is the same). Values are copied in and out, so no
program ever holds a pointer into the ring.
"""

from __future__ import annotations

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native import NativeModule
from ..native.irblocks import (
    I64,
    define,
    errno,
    field_address,
    i32,
    i64,
    load_field,
    memcpy,
    spin_lock,
    spin_unlock,
    store_field,
    widen,
)
from .base import Map, MapError, prototypes, queue_prototypes
from .hash import _branch
from .header import BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EINVAL, ENOENT, MapHeader
from .header_ir import part

QUEUE_PREFIX = "pybpf_queue_"
STACK_PREFIX = "pybpf_stack_"

BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
ACCESS_FLAGS = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG
"""The kernel's BPF_F_ACCESS_MASK."""

ENOTSUPP = 524
"""The kernel-internal "operation not supported" errno that `bpf()` passes on."""


def check_access_flags(spec: MapSpec, allowed: int) -> None:
    """EINVAL for flags outside `allowed` or for both read-only and write-only.

    As the kernel's `bpf_map_flags_access_ok` plus each family's create mask.
    """
    flags = spec.flags
    if flags & ~allowed:
        raise MapError(EINVAL, "create", spec.name, f"map flags 0x{flags:x} not allowed")
    for pair in (BPF_F_RDONLY | BPF_F_WRONLY, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG):
        if flags & pair == pair:
            raise MapError(EINVAL, "create", spec.name, "map both read-only and write-only")


def _slot(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    """Address of ring slot `index` (an i32 below max_entries)."""
    stride = widen(b, load_field(b, MapHeader, header, "value_stride"))
    values = part(b, header, "values")
    return b.add(values, b.mul(widen(b, index), stride))


def _wrap(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    return b.urem(index, load_field(b, MapHeader, header, "max_entries"))


def _locked_body(module: ir.Module, name: str, args: list, body) -> None:
    """Exported `name(map, …)`: `body(b, function)` runs under the map lock.

    `body` returns the i64 result; it must not return from the function itself.
    """
    function, b = define(module, name, I64, args)
    lock = field_address(b, MapHeader, function.args[0], "lock")
    spin_lock(b, lock)
    result = body(b, function)
    spin_unlock(b, lock)
    b.ret(result)


def _build_family(module: ir.Module, prefix: str, lifo: bool) -> None:
    # Key-based operations: NULL / EINVAL, as for programs in the kernel.
    function, b = define(module, f"{prefix}lookup", I64, [I64, I64, I64])
    b.ret(i64(0))
    function, b = define(module, f"{prefix}delete", I64, [I64, I64])
    b.ret(errno(EINVAL))
    function, b = define(module, f"{prefix}get_next_key", I64, [I64, I64, I64])
    b.ret(errno(EINVAL))

    def push(b: ir.IRBuilder, function: ir.Function) -> ir.Value:
        header, value, flags = function.args[0], function.args[-2], function.args[-1]
        result = b.alloca(I64)
        b.store(i64(0), result)
        done = function.append_basic_block("done")
        count = load_field(b, MapHeader, header, "count")
        max_entries = load_field(b, MapHeader, header, "max_entries")
        full, room = _branch(b, b.icmp_unsigned(">=", count, max_entries), "full")
        b.position_at_end(full)
        replace, refuse = _branch(
            b, b.icmp_unsigned("!=", b.and_(flags, i64(BPF_EXIST)), i64(0)), "replace"
        )
        b.position_at_end(refuse)
        b.store(errno(E2BIG), result)
        b.branch(done)
        b.position_at_end(replace)
        # Drop the oldest element, queue or stack alike (as the kernel does).
        oldest = load_field(b, MapHeader, header, "next_fresh")
        store_field(b, MapHeader, header, "next_fresh", _wrap(b, header, b.add(oldest, i32(1))))
        store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
        b.branch(room)
        b.position_at_end(room)
        count = load_field(b, MapHeader, header, "count")
        oldest = load_field(b, MapHeader, header, "next_fresh")
        slot = _slot(b, header, _wrap(b, header, b.add(oldest, count)))
        memcpy(b, slot, value, load_field(b, MapHeader, header, "value_size"))
        store_field(b, MapHeader, header, "count", b.add(count, i32(1)))
        b.branch(done)
        b.position_at_end(done)
        return b.load(result)

    def check_flags(b: ir.IRBuilder, function: ir.Function) -> None:
        flags = function.args[-1]
        bad = b.or_(
            b.icmp_unsigned("!=", b.and_(flags, i64(BPF_NOEXIST)), i64(0)),
            b.icmp_unsigned(">", flags, i64(BPF_EXIST)),
        )
        invalid, valid = _branch(b, bad, "flags")
        b.position_at_end(invalid)
        b.ret(errno(EINVAL))
        b.position_at_end(valid)

    for name, args in (("push", [I64, I64, I64]), ("update", [I64, I64, I64, I64, I64])):
        # update(map, key, value, flags, cpu) is the syscall's push; its last
        # argument is the CPU, so move flags to the end for the shared body.
        function, b = define(module, f"{prefix}{name}", I64, args)
        if name == "update":
            inner = module.get_global(f"{prefix}push")
            b.ret(b.call(inner, [function.args[0], function.args[2], function.args[3]]))
            continue
        check_flags(b, function)
        lock = field_address(b, MapHeader, function.args[0], "lock")
        spin_lock(b, lock)
        result = push(b, function)
        spin_unlock(b, lock)
        b.ret(result)

    def take(remove: bool):
        def body(b: ir.IRBuilder, function: ir.Function) -> ir.Value:
            header, out = function.args
            result = b.alloca(I64)
            b.store(i64(0), result)
            done = function.append_basic_block("done")
            count = load_field(b, MapHeader, header, "count")
            empty, some = _branch(b, b.icmp_unsigned("==", count, i32(0)), "empty")
            b.position_at_end(empty)
            b.store(errno(ENOENT), result)
            b.branch(done)
            b.position_at_end(some)
            oldest = load_field(b, MapHeader, header, "next_fresh")
            if lifo:
                index = _wrap(b, header, b.add(oldest, b.sub(count, i32(1))))
            else:
                index = oldest
            memcpy(b, out, _slot(b, header, index), load_field(b, MapHeader, header, "value_size"))
            if remove:
                store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
                if not lifo:
                    following = _wrap(b, header, b.add(oldest, i32(1)))
                    store_field(b, MapHeader, header, "next_fresh", following)
            b.branch(done)
            b.position_at_end(done)
            return b.load(result)

        return body

    _locked_body(module, f"{prefix}pop", [I64, I64], take(remove=True))
    _locked_body(module, f"{prefix}peek", [I64, I64], take(remove=False))


def build_queue_stack_module(module: ir.Module) -> None:
    """Add the queue and stack operations to `module`."""
    _build_family(module, QUEUE_PREFIX, lifo=False)
    _build_family(module, STACK_PREFIX, lifo=True)


QUEUE_STACK_NATIVE = NativeModule(
    "queue_stack",
    build_queue_stack_module,
    {
        **prototypes(QUEUE_PREFIX),
        **queue_prototypes(QUEUE_PREFIX),
        **prototypes(STACK_PREFIX),
        **queue_prototypes(STACK_PREFIX),
    },
)
"""Native code of the queue and stack families, compiled on first use."""


class KeylessMap(Map):
    """Shared Python side of maps without keys (key_size 0).

    `lookup(b"")` is a peek (None when empty) and `update(b"", value, flags)`
    a push, as `bpf_map_lookup_elem` / `bpf_map_update_elem` with a NULL key
    are for these maps; they have no keys to iterate.
    """

    queue_ops = True
    create_flags = BPF_F_NUMA_NODE | ACCESS_FLAGS

    def check_spec(self, spec: MapSpec) -> None:
        """EINVAL unless key_size is 0 and value_size, max_entries are not."""
        if spec.key_size != 0 or spec.value_size == 0 or spec.max_entries == 0:
            raise MapError(
                EINVAL, "create", spec.name, "needs key size 0, a value size and max_entries"
            )
        check_access_flags(spec, self.create_flags)

    def lookup(self, key: bytes = b"") -> bytes | None:
        """The value `peek` gives, or None when the map is empty."""
        self._key(key, "lookup")
        try:
            return self.peek()
        except MapError as error:
            if error.errno == ENOENT:
                return None
            raise

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """A push (the key must be empty)."""
        self._key(key, "update")
        self.push(value, flags)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return self.header.count


class QueueMap(KeylessMap):
    """BPF_MAP_TYPE_QUEUE: first in, first out, up to `max_entries` values."""

    module = QUEUE_STACK_NATIVE
    prefix = QUEUE_PREFIX


class StackMap(KeylessMap):
    """BPF_MAP_TYPE_STACK: last in, first out, up to `max_entries` values."""

    module = QUEUE_STACK_NATIVE
    prefix = STACK_PREFIX
