"""bpf_perf_event_output: a sample into the perf event array's reader for this CPU.

The map's `output` holds the kernel's rules (index, BPF_F_CURRENT_CPU,
E2BIG / ENOENT / EOPNOTSUPP / EINVAL); this module reads the program's
buffer, bounds-checked, and for XDP and tc programs appends the first
`BPF_F_CTXLEN_MASK` bytes of the packet, as bpf_xdp_event_output and
bpf_skb_event_output do (-EFAULT when the packet is shorter).
"""

from __future__ import annotations

import errno

from ...errors import ProgramFault
from ...lazy import lazy_module
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..memory import ContextRegion
from . import helper_spec

# The map module, imported when the helper first runs: every object's helper table
# imports this module.
_maps = lazy_module("..maps.perf_event_array", __package__)

_NAME = "bpf_perf_event_output"


def _packet(env: HelperEnv, length: int) -> bytes | int:
    region = env.memory.find(env.ctx)
    pointers = region.pointers if isinstance(region, ContextRegion) else {}
    if "data" not in pointers or "data_end" not in pointers:
        return -errno.EINVAL
    start, end = pointers["data"], pointers["data_end"]
    if length > end - start:
        return -errno.EFAULT
    return env.memory.read(start, length)


def perf_event_output(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Append r5 bytes at r4 to perf event array r2's buffer chosen by flags r3."""
    if env.runtime is None:
        raise ProgramFault(f"{_NAME}: 0x{r2:x} is not a map pointer (no execution context)")
    try:
        map_ = env.runtime.map_at(r2)
    except ProgramFault as fault:
        raise ProgramFault(f"{_NAME}: {fault.reason}", address=r2) from None
    if not isinstance(map_, _maps().PerfEventArrayMap):
        raise ProgramFault(f"{_NAME}: map {map_.name!r} is not a perf_event_array", address=r2)
    data = b""
    if r5:
        region = env.memory.find(r4, r5)
        if region is None:
            raise ProgramFault(
                f"{_NAME}: {r5} bytes at 0x{r4:x} are not program memory", address=r4, size=r5
            )
        data = region.read(r4 - region.start, r5)
    context_length = (r3 >> 32) & 0xFFFFF
    if context_length:
        packet = _packet(env, context_length)
        if isinstance(packet, int):
            return packet
        data += packet
    return map_.output(env.cpu, r3, data)


HELPERS: list[HelperSpec] = [helper_spec(HelperId.PERF_EVENT_OUTPUT, perf_event_output)]
"""bpf_perf_event_output, with its Linux id and prototype."""
