"""BPF_MAP_TYPE_STACK_TRACE: call stacks stored by `bpf_get_stackid`, read from user space.

Semantics follow kernel/bpf/stackmap.c. The map has `n_buckets` =
`max_entries` rounded up to a power of two; `bpf_get_stackid` hashes the
stack's return addresses with `jhash2` (seed 0) and keeps them in bucket
`hash & (n_buckets - 1)`, whose index is the stack id it returns: the same
stack gives the same id, a different stack in an occupied bucket gives
-EEXIST unless BPF_F_REUSE_STACKID replaces it. User space reads a bucket
by id (the addresses, zero-padded to the value size; ENOENT for an empty or
out-of-range id), deletes it (E2BIG out of range, ENOENT empty), walks the
occupied ids with `get_next_key`, and cannot update (EINVAL). Programs
cannot look it up: the verifier allows the map only as `bpf_get_stackid`'s
argument.

Storage is the array family's native code, one slot per bucket, laid out
as `u32 present, u32 nr, u32 hash, u32 pad, u64 ips[depth]`: the helper and
the API are both Python (a stack map is never program-visible memory), so
the buckets live in the same native memory as every other map and nothing
else is needed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace

from ...elf.map_types import MapType
from ...elf.specs import MapSpec
from ..memory import Memory
from .array import ArrayMap
from .base import MapError
from .header import BPF_ANY, EINVAL, ENOENT

E2BIG = 7
EEXIST = 17
EFAULT = 14
ENOMEM = 12

BPF_F_SKIP_FIELD_MASK = 0xFF
BPF_F_USER_STACK = 1 << 8
BPF_F_FAST_STACK_CMP = 1 << 9
BPF_F_REUSE_STACKID = 1 << 10
BPF_F_STACK_BUILD_ID = 1 << 5  # a map flag: buckets hold struct bpf_stack_build_id
PERF_MAX_STACK_DEPTH = 127
"""The default sysctl kernel.perf_event_max_stack."""

_BUCKET_HEADER = struct.Struct("<IIII")
_M32 = 0xFFFFFFFF

__all__ = ["StackTraceMap", "jhash2"]


def _rol32(word: int, shift: int) -> int:
    return ((word << shift) | (word >> (32 - shift))) & _M32


def jhash2(words: Sequence[int], initval: int = 0) -> int:
    """The kernel's `jhash2` (Bob Jenkins' lookup3) over 32-bit words."""
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & _M32
    k = list(words)
    while len(k) > 3:
        a, b, c = (a + k[0]) & _M32, (b + k[1]) & _M32, (c + k[2]) & _M32
        a, b, c = _mix(a, b, c)
        k = k[3:]
    if not k:
        return c
    if len(k) == 3:
        c = (c + k[2]) & _M32
    if len(k) >= 2:
        b = (b + k[1]) & _M32
    a = (a + k[0]) & _M32
    return _final(a, b, c)


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    for shift_a, shift_b, shift_c in ((4, 6, 8), (16, 19, 4)):
        a = ((a - c) & _M32) ^ _rol32(c, shift_a)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rol32(a, shift_b)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rol32(b, shift_c)
        b = (b + a) & _M32
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    for x, y, shift in (
        ("c", "b", 14),
        ("a", "c", 11),
        ("b", "a", 25),
        ("c", "b", 16),
        ("a", "c", 4),
        ("b", "a", 14),
        ("c", "b", 24),
    ):
        regs = {"a": a, "b": b, "c": c}
        regs[x] = ((regs[x] ^ regs[y]) - _rol32(regs[y], shift)) & _M32
        a, b, c = regs["a"], regs["b"], regs["c"]
    return c


class StackTraceMap(ArrayMap):
    """BPF_MAP_TYPE_STACK_TRACE (see the module docstring); `spec` is the map as defined."""

    shareable = False

    kind = "stack_trace"

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        self._check(spec)
        self.entry_size = 32 if spec.flags & BPF_F_STACK_BUILD_ID else 8
        self.depth = spec.value_size // self.entry_size
        self.n_buckets = 1 << (spec.max_entries - 1).bit_length()
        buckets = replace(
            spec,
            type=MapType.ARRAY,
            value_size=_BUCKET_HEADER.size + spec.value_size,
            max_entries=self.n_buckets,
            flags=0,
        )
        super().__init__(buckets, memory, ncpus=ncpus)
        self.buckets_spec = buckets
        self.spec = spec  # what users and the verifier see

    @staticmethod
    def _check(spec: MapSpec) -> None:
        # stack_map_alloc's sanity checks.
        entry = 32 if spec.flags & BPF_F_STACK_BUILD_ID else 8
        if (
            spec.max_entries == 0
            or spec.key_size != 4
            or spec.value_size < 8
            or spec.value_size % entry
            or spec.value_size // entry > PERF_MAX_STACK_DEPTH
        ):
            raise MapError(EINVAL, "create", spec.name, "bad stack trace map attributes")

    def check_spec(self, spec: MapSpec) -> None:
        """The buckets' array needs no further checks (`_check` ran on the real spec)."""

    # -- buckets ---------------------------------------------------------------------

    def _slot(self, bucket: int) -> int:
        address = self.address_of(bucket.to_bytes(4, "little"))
        assert address is not None  # an array slot below max_entries always exists
        return address

    def _read(self, bucket: int) -> tuple[int, int, bytes] | None:
        """`(nr, hash, data)` of a bucket, None when it is empty."""
        raw = self.memory.read(self._slot(bucket), self.buckets_spec.value_size)
        present, nr, hash_, _ = _BUCKET_HEADER.unpack_from(raw)
        if not present:
            return None
        return nr, hash_, raw[_BUCKET_HEADER.size :]

    def _write(self, bucket: int, nr: int, hash_: int, data: bytes) -> None:
        record = _BUCKET_HEADER.pack(1, nr, hash_, 0) + data.ljust(self.spec.value_size, b"\0")
        self.memory.write(self._slot(bucket), record)

    def _clear(self, bucket: int) -> None:
        self.memory.write(self._slot(bucket), bytes(self.buckets_spec.value_size))

    # -- bpf_get_stackid --------------------------------------------------------------

    def stackid(self, stack: Sequence[int], flags: int) -> int:
        """`bpf_get_stackid` on the call stack `stack` (return addresses): the id or -errno."""
        allowed = BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP
        if flags & ~(allowed | BPF_F_REUSE_STACKID):
            return -EINVAL
        skip = flags & BPF_F_SKIP_FIELD_MASK
        depth = min(self.depth + skip, PERF_MAX_STACK_DEPTH)
        trace = [ip & ((1 << 64) - 1) for ip in stack[:depth]]
        if len(trace) <= skip:
            return -EFAULT  # skipping more than the usable stack trace
        ips = trace[skip:]
        data = b"".join(ip.to_bytes(8, "little") for ip in ips)
        hash_ = jhash2(struct.unpack(f"<{len(data) // 4}I", data))
        bucket = hash_ & (self.n_buckets - 1)
        old = self._read(bucket)
        matches = old is not None and old[1] == hash_
        if matches and flags & BPF_F_FAST_STACK_CMP:
            return bucket
        if self.entry_size != 8:
            return -EINVAL  # build-id stacks need the executables' notes; none here
        if matches and old is not None and old[0] == len(ips) and old[2][: len(data)] == data:
            return bucket
        if old is not None and not flags & BPF_F_REUSE_STACKID:
            return -EEXIST
        self._write(bucket, len(ips), hash_, data)
        return bucket

    # -- the syscall's view -----------------------------------------------------------

    def _id(self, key: bytes, op: str) -> int:
        key = bytes(key)
        if len(key) != 4:
            raise MapError(EINVAL, op, self.name, f"key is {len(key)} bytes, expected 4")
        return int.from_bytes(key, "little")

    def lookup(self, key: bytes) -> bytes | None:  # type: ignore[override]
        """The stack stored under id `key`, zero-padded to the value size; None if none."""
        stack_id = self._id(key, "lookup")
        if stack_id >= self.n_buckets:
            return None
        found = self._read(stack_id)
        if found is None:
            return None
        nr, _, data = found
        return data[: nr * self.entry_size].ljust(self.spec.value_size, b"\0")

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:  # type: ignore[override]
        """Refused, as the kernel's stack_map_update_elem (EINVAL)."""
        raise MapError(
            EINVAL, "update", self.name, "stack trace maps are filled by bpf_get_stackid"
        )

    def delete(self, key: bytes) -> None:  # type: ignore[override]
        """Free the bucket `key`: E2BIG beyond the buckets, ENOENT when empty."""
        stack_id = self._id(key, "delete")
        if stack_id >= self.n_buckets:
            raise MapError(E2BIG, "delete", self.name)
        if self._read(stack_id) is None:
            raise MapError(ENOENT, "delete", self.name)
        self._clear(stack_id)

    def get_next_key(self, key: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """The next occupied id after `key` (the first for None or an unknown id)."""
        stack_id = 0
        if key is not None:
            current = self._id(key, "get_next_key")
            if current < self.n_buckets and self._read(current) is not None:
                stack_id = current + 1
        while stack_id < self.n_buckets and self._read(stack_id) is None:
            stack_id += 1
        return stack_id.to_bytes(4, "little") if stack_id < self.n_buckets else None

    def __len__(self) -> int:
        return sum(self._read(i) is not None for i in range(self.n_buckets))
