"""bpf_redirect_map: XDP_REDIRECT through a devmap, devmap_hash, cpumap or xskmap.

As `__bpf_xdp_redirect_map` in the kernel: flag bits other than the
fallback action (the low two bits) and, for device maps,
BPF_F_BROADCAST / BPF_F_EXCLUDE_INGRESS give XDP_ABORTED; a key with no
target gives the fallback action (`flags & 3`); otherwise the result is
XDP_REDIRECT and the target is recorded in `env.data["redirect"]` (a
`RedirectRecord`), which a test run can report. Nothing is transmitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...elf.map_types import MapType
from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

XDP_ABORTED = 0
XDP_REDIRECT = 4
BPF_F_BROADCAST = 1 << 3
BPF_F_EXCLUDE_INGRESS = 1 << 4
_ACTION_MASK = 3
_DEVICE_MAPS = frozenset({MapType.DEVMAP, MapType.DEVMAP_HASH})


@dataclass(frozen=True, slots=True)
class RedirectRecord:
    """Where a redirect went: the map, the key, the target (None for a broadcast), flags."""

    map_name: str
    map_type: int
    key: int
    target: int | None
    flags: int


def redirect_map(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Redirect to entry r2 of map r1; fallback action in the low bits of flags r3."""
    if env.runtime is None:
        raise ProgramFault(f"bpf_redirect_map: 0x{r1:x} is not a map pointer")
    try:
        map_ = env.runtime.map_at(r1)
    except ProgramFault as fault:
        raise ProgramFault(f"bpf_redirect_map: {fault.reason}", address=r1) from None
    target_of = getattr(map_, "redirect_target", None)
    if target_of is None:
        raise ProgramFault(f"bpf_redirect_map: map {map_.name!r} is not a redirect map")
    allowed = _ACTION_MASK
    if map_.spec.type in _DEVICE_MAPS:
        allowed |= BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
    if r3 & ~allowed:
        return XDP_ABORTED
    key = r2 & 0xFFFFFFFF
    target = target_of(key)
    broadcast = bool(r3 & BPF_F_BROADCAST)
    if target is None and not broadcast:
        return r3 & _ACTION_MASK
    env.data["redirect"] = RedirectRecord(
        map_.name, map_.spec.type, key, None if broadcast else target, r3
    )
    return XDP_REDIRECT


HELPERS: list[HelperSpec] = [helper_spec(HelperId.REDIRECT_MAP, redirect_map)]
"""bpf_redirect_map, with its Linux id and prototype."""
