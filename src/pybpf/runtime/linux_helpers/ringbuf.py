"""Ring buffer helpers: bpf_ringbuf_output, _reserve, _submit, _discard and _query.

Each one checks its pointer arguments against the program's memory, then
calls the ring buffer's native code (`maps.ringbuf`), the same functions a
JIT calls, so records written by a program and read from Python (or by a
libbpf-style consumer) are the same bytes. Results follow
kernel/bpf/ringbuf.c: reserve gives the sample address or 0 (NULL),
output 0, -EINVAL (bad flags) or -EAGAIN (no room), query the asked value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ProgramFault
from ...lazy import lazy_module
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

if TYPE_CHECKING:
    from ..maps.ringbuf import RingBufMap, RingBufRegion

# The map module, imported when a helper first runs: every object's helper table
# imports this module, and most programs use no ring buffer.
_maps = lazy_module("..maps.ringbuf", __package__)

_M64 = (1 << 64) - 1


def _ringbuf(env: HelperEnv, pointer: int, helper: str) -> RingBufMap:
    if env.runtime is None:
        raise ProgramFault(f"{helper}: 0x{pointer:x} is not a map pointer (no execution context)")
    try:
        map_ = env.runtime.map_at(pointer)
    except ProgramFault as fault:
        raise ProgramFault(f"{helper}: {fault.reason}", address=pointer) from None
    if not isinstance(map_, _maps().RingBufMap):
        raise ProgramFault(f"{helper}: map {map_.name!r} is not a ringbuf", address=pointer)
    return map_


def _sample(env: HelperEnv, sample: int, helper: str) -> RingBufRegion:
    """The ring buffer region of a reserved sample, or a ProgramFault naming `helper`."""
    maps = _maps()
    header = (sample - maps.BPF_RINGBUF_HDR_SZ) & _M64
    region = env.memory.find(header, maps.BPF_RINGBUF_HDR_SZ)
    if not isinstance(region, maps.RingBufRegion) or header >= region.start + region.ringbuf.size:
        raise ProgramFault(f"{helper}: 0x{sample:x} is not a ringbuf sample", address=sample)
    length = int.from_bytes(
        region.view[header - region.start : header - region.start + 4], "little"
    )
    if not length & maps.BPF_RINGBUF_BUSY_BIT:
        raise ProgramFault(
            f"{helper}: sample at 0x{sample:x} is not reserved (already submitted or discarded)",
            address=sample,
        )
    return region


def ringbuf_output(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r3 bytes at r2 into a new record of ring buffer r1 (flags r4)."""
    map_ = _ringbuf(env, r1, "bpf_ringbuf_output")
    if r3 and env.memory.find(r2, r3) is None:
        raise ProgramFault(
            f"bpf_ringbuf_output: {r3} bytes at 0x{r2:x} are not program memory",
            address=r2,
            size=r3,
        )
    return map_._output(map_.address, r2, r3, r4)


def ringbuf_reserve(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Reserve an r2-byte sample in ring buffer r1 (flags r3 must be 0); address or 0."""
    map_ = _ringbuf(env, r1, "bpf_ringbuf_reserve")
    return map_._reserve(map_.address, r2, r3)


def ringbuf_submit(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Commit the reserved sample r1 (flags r2: BPF_RB_NO_WAKEUP / _FORCE_WAKEUP)."""
    region = _sample(env, r1, "bpf_ringbuf_submit")
    region.ringbuf._submit(r1, r2)
    return 0


def ringbuf_discard(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Discard the reserved sample r1 (the consumer skips it)."""
    region = _sample(env, r1, "bpf_ringbuf_discard")
    region.ringbuf._discard(r1, r2)
    return 0


def ringbuf_query(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """BPF_RB_AVAIL_DATA, _RING_SIZE, _CONS_POS or _PROD_POS of ring buffer r1 (0 otherwise)."""
    map_ = _ringbuf(env, r1, "bpf_ringbuf_query")
    return map_._query(map_.address, r2)


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.RINGBUF_OUTPUT, ringbuf_output),
    helper_spec(HelperId.RINGBUF_RESERVE, ringbuf_reserve),
    helper_spec(HelperId.RINGBUF_SUBMIT, ringbuf_submit),
    helper_spec(HelperId.RINGBUF_DISCARD, ringbuf_discard),
    helper_spec(HelperId.RINGBUF_QUERY, ringbuf_query),
]
"""The ring buffer helpers, with their Linux ids and prototypes."""
