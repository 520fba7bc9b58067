"""BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY, native code and Python class.

Semantics follow kernel/bpf/arraymap.c: keys are u32 indices below
`max_entries`, every element always exists (zero-filled at creation),
updates with BPF_NOEXIST fail with EEXIST, an index out of range with
E2BIG, deletes with EINVAL; get_next_key of NULL or of an index out of
range gives 0, of the last index ENOENT. Elements are
`round_up(value_size, 8)` bytes apart, as in the kernel.
"""

from __future__ import annotations

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native import NativeModule
from ..native.irblocks import (
    I32,
    I64,
    define,
    errno,
    field_address,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    spin_lock,
    spin_unlock,
    store,
    widen,
)
from .base import Map, MapError, PerCpuValues, prototypes
from .fastcall import add_entry_points, entry_prototypes
from .header import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, MapHeader

ARRAY_PREFIX = "pybpf_array_"
PERCPU_ARRAY_PREFIX = "pybpf_percpu_array_"


def _element(builder: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    """Address of element `index`'s value block (CPU 0's value)."""
    block = widen(builder, load_field(builder, MapHeader, header, "value_block"))
    values = load_field(builder, MapHeader, header, "values")
    return builder.add(values, builder.mul(widen(builder, index), block))


def _cpu_slot(builder: ir.IRBuilder, header: ir.Value, element: ir.Value, cpu: ir.Value):
    """Address of CPU `cpu`'s value inside an element (cpu < 0 means CPU 0)."""
    stride = widen(builder, load_field(builder, MapHeader, header, "value_stride"))
    cpu = builder.select(builder.icmp_signed("<", cpu, i64(0)), i64(0), cpu)
    return builder.add(element, builder.mul(cpu, stride))


def check_update_flags(builder: ir.IRBuilder, function: ir.Function, flags: ir.Value) -> None:
    """Return EINVAL for BPF_F_LOCK or flags above BPF_EXIST (kernel order).

    BPF_F_LOCK needs a bpf_spin_lock in the value (described by BTF), which
    is not modelled yet, so it is refused the way the kernel refuses it for
    a value without one.
    """
    bad = builder.or_(
        builder.icmp_unsigned("!=", builder.and_(flags, i64(BPF_F_LOCK)), i64(0)),
        builder.icmp_unsigned(">", flags, i64(BPF_EXIST)),
    )
    invalid = function.append_basic_block("flags.invalid")
    valid = function.append_basic_block("flags.valid")
    builder.cbranch(bad, invalid, valid)
    builder.position_at_end(invalid)
    builder.ret(errno(EINVAL))
    builder.position_at_end(valid)


def _build_family(module: ir.Module, prefix: str, percpu: bool) -> None:
    # lookup(map, key, cpu) -> value address or 0. No lock: elements never
    # move, and a reader racing an update may see a torn value, as in Linux.
    function, b = define(module, f"{prefix}lookup", I64, [I64, I64, I64])
    header, key, cpu = function.args
    index = load(b, key, I32)
    max_entries = load_field(b, MapHeader, header, "max_entries")
    inside = function.append_basic_block("inside")
    outside = function.append_basic_block("outside")
    b.cbranch(b.icmp_unsigned("<", index, max_entries), inside, outside)
    b.position_at_end(outside)
    b.ret(i64(0))
    b.position_at_end(inside)
    element = _element(b, header, index)
    if percpu:
        ncpus = widen(b, load_field(b, MapHeader, header, "ncpus"))
        valid = function.append_basic_block("cpu.valid")
        b.cbranch(b.icmp_signed(">=", cpu, ncpus), outside, valid)
        b.position_at_end(valid)
        element = _cpu_slot(b, header, element, cpu)
    b.ret(element)

    # update(map, key, value, flags, cpu) -> 0 / -errno. Taken under the map
    # lock so that two updaters never interleave their copies (Linux only
    # guarantees that with BPF_F_LOCK; being stricter is not observable).
    function, b = define(module, f"{prefix}update", I64, [I64, I64, I64, I64, I64])
    header, key, value, flags, cpu = function.args
    check_update_flags(b, function, flags)
    index = load(b, key, I32)
    max_entries = load_field(b, MapHeader, header, "max_entries")
    inside = function.append_basic_block("inside")
    outside = function.append_basic_block("outside")
    b.cbranch(b.icmp_unsigned("<", index, max_entries), inside, outside)
    b.position_at_end(outside)
    b.ret(errno(E2BIG))
    b.position_at_end(inside)
    exists = function.append_basic_block("exists")
    allowed = function.append_basic_block("allowed")
    b.cbranch(b.icmp_unsigned("==", flags, i64(BPF_NOEXIST)), exists, allowed)
    b.position_at_end(exists)
    b.ret(errno(EEXIST))
    b.position_at_end(allowed)
    element = _element(b, header, index)
    value_size = load_field(b, MapHeader, header, "value_size")
    lock = field_address(b, MapHeader, header, "lock")
    if percpu:
        ncpus = widen(b, load_field(b, MapHeader, header, "ncpus"))
        every = function.append_basic_block("all.cpus")
        one = function.append_basic_block("one.cpu")
        check = function.append_basic_block("cpu.check")
        bad_cpu = function.append_basic_block("cpu.invalid")
        b.cbranch(b.icmp_signed("<", cpu, i64(0)), every, check)
        b.position_at_end(check)
        b.cbranch(b.icmp_signed(">=", cpu, ncpus), bad_cpu, one)
        b.position_at_end(bad_cpu)
        b.ret(errno(EINVAL))
        b.position_at_end(every)
        spin_lock(b, lock)
        memcpy(b, element, value, load_field(b, MapHeader, header, "value_block"))
        spin_unlock(b, lock)
        b.ret(i64(0))
        b.position_at_end(one)
        element = _cpu_slot(b, header, element, cpu)
    spin_lock(b, lock)
    memcpy(b, element, value, value_size)
    spin_unlock(b, lock)
    b.ret(i64(0))

    # delete(map, key): array elements cannot be deleted.
    function, b = define(module, f"{prefix}delete", I64, [I64, I64])
    b.ret(errno(EINVAL))

    # get_next_key(map, key, next): indices in order; NULL or out of range → 0.
    function, b = define(module, f"{prefix}get_next_key", I64, [I64, I64, I64])
    header, key, out = function.args
    given = function.append_basic_block("given")
    resolved = function.append_basic_block("resolved")
    start = b.block
    b.cbranch(b.icmp_unsigned("==", key, i64(0)), resolved, given)
    b.position_at_end(given)
    loaded = load(b, key, I32)
    b.branch(resolved)
    b.position_at_end(resolved)
    index = b.phi(I32)
    index.add_incoming(i32(0xFFFFFFFF), start)
    index.add_incoming(loaded, given)
    max_entries = load_field(b, MapHeader, header, "max_entries")
    restart = function.append_basic_block("restart")
    inside = function.append_basic_block("inside")
    b.cbranch(b.icmp_unsigned(">=", index, max_entries), restart, inside)
    b.position_at_end(restart)
    store(b, i32(0), out)
    b.ret(i64(0))
    b.position_at_end(inside)
    last = function.append_basic_block("last")
    following = function.append_basic_block("next")
    b.cbranch(b.icmp_unsigned("==", index, b.sub(max_entries, i32(1))), last, following)
    b.position_at_end(last)
    b.ret(errno(ENOENT))
    b.position_at_end(following)
    store(b, b.add(index, i32(1)), out)
    b.ret(i64(0))


def build_array_module(module: ir.Module) -> None:
    """Add the array and per-CPU array operations to `module`."""
    _build_family(module, ARRAY_PREFIX, percpu=False)
    _build_family(module, PERCPU_ARRAY_PREFIX, percpu=True)
    add_entry_points(module, ARRAY_PREFIX, percpu=False)
    add_entry_points(module, PERCPU_ARRAY_PREFIX, percpu=True)


ARRAY_NATIVE = NativeModule(
    "array",
    build_array_module,
    {
        **prototypes(ARRAY_PREFIX),
        **prototypes(PERCPU_ARRAY_PREFIX),
        **entry_prototypes(ARRAY_PREFIX, percpu=False),
        **entry_prototypes(PERCPU_ARRAY_PREFIX, percpu=True),
    },
)
"""Native code of both array families, compiled on first use."""


class ArrayMap(Map):
    """BPF_MAP_TYPE_ARRAY: `max_entries` zero-filled values indexed by a u32 key."""

    module = ARRAY_NATIVE
    prefix = ARRAY_PREFIX

    def check_spec(self, spec: MapSpec) -> None:
        """The kernel wants 4-byte keys and non-zero value size and entries."""
        super().check_spec(spec)
        if spec.key_size != 4:
            raise MapError(EINVAL, "create", spec.name, "array keys must be 4 bytes")

    def __len__(self) -> int:
        return self.spec.max_entries


class PerCpuArrayMap(PerCpuValues, ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY: an array holding one value per simulated CPU."""

    prefix = PERCPU_ARRAY_PREFIX
