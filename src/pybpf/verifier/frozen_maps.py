"""Read-only and frozen maps: what programs may not write, and values the verifier knows.

libbpf creates `.rodata` (and `.kconfig`) with `BPF_F_RDONLY_PROG`, writes
the values the user set after opening the object, then freezes the map
(`BPF_MAP_FREEZE`) before loading the programs. The kernel then

* refuses any write into such a map's value, by a store, an atomic or a
  helper that writes its argument (check_map_access_type: "write into map
  forbidden, value_size=16 off=0 size=4");
* reads the bytes of a frozen read-only map as constants: a load at a
  constant offset gives the value the map holds when the program is
  loaded (check_mem_access, bpf_map_direct_read), so a `const volatile`
  configuration is known to the verifier, as a loop bound or an index.

A `MapDescriptor` says `readonly`, and `frozen` holds the value. A pointer
into a map's value carries the map's fd in `shared_map` (set by
`lddw src=MAP_VALUE` and map lookups, transfer.py / memory.py) whenever
the object has a read-only map; objects without one never see the
variable, so PREVAIL's invariants print as before.
"""

from __future__ import annotations

from .domains.interval import Interval
from .ir import Mem
from .options import AnalysisOptions
from .state import State, reg_owner, var

__all__ = ["frozen_constant", "readonly_write_error", "tag_map"]


def _has_readonly(opts: AnalysisOptions) -> bool:
    return any(m.readonly for m in opts.maps.values())


def tag_map(state: State, owner: str, fd: int | None, opts: AnalysisOptions) -> None:
    """Record that `owner` points into map `fd`'s value (only when a map is read-only)."""
    if fd is not None and _has_readonly(opts):
        state.zone.set(var(owner, "shared_map"), Interval.const(fd))


def frozen_constant(
    state: State, base: int, insn: Mem, opts: AnalysisOptions
) -> tuple[Interval, Interval] | None:
    """The (signed, unsigned) value a load through `base` reads, when a frozen map's bytes."""
    owner = reg_owner(base)
    fd = state.eval(var(owner, "shared_map")).singleton()
    if fd is None or fd not in opts.maps or opts.maps[fd].frozen is None:
        return None
    data = opts.maps[fd].frozen
    at = state.eval(var(owner, "shared_offset")).singleton()
    width = insn.access.width
    if at is None:
        return None
    off = at + insn.access.offset
    if off < 0 or off + width > len(data):
        return None
    value = int.from_bytes(data[off : off + width], "big" if opts.big_endian else "little")
    bits = 8 * width
    signed = value - (1 << bits) if value >> (bits - 1) else value
    if insn.is_signed:
        value = signed & ((1 << 64) - 1)
    elif width < 8:
        signed = value
    return Interval.const(signed), Interval.const(value)


def readonly_write_error(
    state: State, reg: int, offset: int, size: int, opts: AnalysisOptions
) -> str | None:
    """The kernel's refusal of a write of `size` bytes at `reg + offset`, when a read-only map's."""
    owner = reg_owner(reg)
    if "shared" not in state.reg_types(reg):
        return None
    fds = state.eval(var(owner, "shared_map"))
    if not fds.is_finite():
        return None
    for fd in range(max(fds.lo, 0), min(fds.hi, max(opts.maps, default=-1)) + 1):
        desc = opts.maps.get(fd)
        if desc is not None and desc.readonly:
            at = state.eval(var(owner, "shared_offset"))
            shown = at.lo + offset if at.lb_finite() else offset
            return (
                f"write into map forbidden, value_size={desc.value_size} off={shown} "
                f"size={size} (the map is read-only to programs)"
            )
    return None
