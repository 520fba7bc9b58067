"""BPF_MAP_TYPE_PERF_EVENT_ARRAY: per-CPU sample buffers, read by a user-space `PerfReader`.

On Linux each slot of the array holds a perf event fd (one per CPU,
opened by the reader, e.g. libbpf's perf_buffer), and `bpf_perf_event_output`
appends a PERF_RECORD_SAMPLE to that event's mmap-ed ring. Here the map is
an fd array (the array family's native code holds, per slot, the id of the
attached reader, 0 when empty) and each reader keeps its samples in
Python: a perf ring is never program-visible memory, so nothing is gained
by keeping it native, and the helper is a rare, Python-side one.

`perf_event_output` follows kernel/trace/bpf_trace.c: index
BPF_F_CURRENT_CPU (0xffffffff) means the running CPU; an index past
`max_entries` gives -E2BIG, an empty slot -ENOENT, an event bound to
another CPU than the running one -EOPNOTSUPP, other flag bits -EINVAL.
A sample is padded as perf pads raw data (the u32 size plus data make a
multiple of 8), and a full buffer drops it and counts it as lost.
`max_entries` 0 becomes the number of CPUs, as libbpf does.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import threading
from collections import deque
from collections.abc import Iterable

from ...elf.specs import MapSpec
from ..memory import Memory
from .base import MapError
from .header import EINVAL, round_up
from .prog_array import FdArrayMap

BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK
BPF_F_CTXLEN_MASK = 0xFFFFF << 32

PERF_SAMPLE_OVERHEAD = 8 + 4
"""perf_event_header plus the raw sample's u32 size."""

DEFAULT_CAPACITY = 8 * 4096
"""Bytes of sample buffer per CPU (libbpf users commonly ask for 8 pages)."""

_reader_ids = itertools.count(1)


class PerfReader:
    """A user-space reader: one sample buffer per attached CPU (perf_buffer in libbpf).

    `read()` drains every buffer, oldest first per CPU, in CPU order;
    `lost` counts samples dropped because a buffer was full.
    """

    def __init__(self, array: PerfEventArrayMap, cpus: Iterable[int], capacity: int):
        self.id = next(_reader_ids)
        self.array = array
        self.capacity = capacity
        self.cpus = list(cpus)
        self.lost = 0
        self._buffers: dict[int, deque[bytes]] = {cpu: deque() for cpu in self.cpus}
        self._used = dict.fromkeys(self.cpus, 0)
        self._lock = threading.Lock()

    def push(self, cpu: int, sample: bytes) -> None:
        """Append a sample to CPU `cpu`'s buffer, or count it lost when full."""
        cost = round_up(PERF_SAMPLE_OVERHEAD + len(sample))
        with self._lock:
            if self._used[cpu] + cost > self.capacity:
                self.lost += 1
                return
            self._used[cpu] += cost
            self._buffers[cpu].append(sample)

    def read(self) -> list[tuple[int, bytes]]:
        """Take every pending sample as `(cpu, data)` (data padded as perf pads it)."""
        with self._lock:
            samples = []
            for cpu in self.cpus:
                buffer = self._buffers[cpu]
                samples.extend((cpu, sample) for sample in buffer)
                buffer.clear()
                self._used[cpu] = 0
        return samples

    def close(self) -> None:
        """Detach from every CPU slot of the array."""
        self.array.detach(self)


class PerfEventArrayMap(FdArrayMap):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: slot `i` holds the reader attached to CPU `i`."""

    kind = "perf_event_array"

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        self.cpus = ncpus or os.cpu_count() or 1
        if spec.max_entries == 0:
            spec = dataclasses.replace(spec, max_entries=self.cpus)
        super().__init__(spec, memory, ncpus=ncpus)
        self._readers: dict[int, PerfReader] = {}

    def resolve(self, value: object) -> tuple[int, object]:
        """Only a `PerfReader` may be stored (the kernel wants a perf event fd)."""
        if not isinstance(value, PerfReader):
            raise MapError(EINVAL, "update", self.name, "perf_event_array values are readers")
        return value.id, value

    def open_reader(
        self, cpus: Iterable[int] | None = None, capacity: int = DEFAULT_CAPACITY
    ) -> PerfReader:
        """Attach a new reader to `cpus` (default: every CPU that has a slot)."""
        if cpus is None:
            cpus = range(min(self.cpus, self.spec.max_entries))
        reader = PerfReader(self, cpus, capacity)
        for cpu in reader.cpus:
            self.update(cpu, reader)
            self._readers[cpu] = reader
        return reader

    def detach(self, reader: PerfReader) -> None:
        """Empty the slots `reader` is attached to."""
        for cpu in reader.cpus:
            if self._readers.get(cpu) is reader:
                del self._readers[cpu]
                self.delete(cpu)

    def output(self, cpu: int, flags: int, data: bytes) -> int:
        """bpf_perf_event_output from CPU `cpu`: 0 or a negative errno."""
        if flags & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK):
            return -errno.EINVAL
        index = flags & BPF_F_INDEX_MASK
        if index == BPF_F_CURRENT_CPU:
            index = cpu
        if index >= self.spec.max_entries:
            return -errno.E2BIG
        reader = self._readers.get(index) if self.slot(index) else None
        if reader is None:
            return -errno.ENOENT
        if index != cpu:
            return -errno.EOPNOTSUPP
        padded = round_up(len(data) + 4) - 4
        reader.push(index, bytes(data).ljust(padded, b"\0"))
        return 0
