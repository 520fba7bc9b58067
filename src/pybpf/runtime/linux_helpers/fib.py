"""bpf_fib_lookup against the execution context's `ForwardingTable` (`runtime.fib`).

The logic of `bpf_ipv4_fib_lookup` / `bpf_ipv6_fib_lookup` and their XDP
and tc wrappers (net/core/filter.c, Linux 6.18): argument checks (-EINVAL
for a short struct or unknown flags, -EAFNOSUPPORT for a family other than
AF_INET/AF_INET6, -ENODEV for an unknown ifindex), then the
BPF_FIB_LKUP_RET_* codes: forwarding disabled on the device, no route or a
non-unicast one (NOT_FWDED), blackhole/unreachable/prohibit routes, the
MTU check (always for XDP, for tc when tot_len is given; otherwise tc
checks the packet against the egress device), and the neighbour lookup.
On success the struct gets the egress ifindex, the route's metric, the
gateway (if any) as destination, smac/dmac, and zeroed VLAN fields.

Without an execution context or a table set, the table is empty but for
the loopback device: every lookup from ifindex 1 answers NOT_FWDED.
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from typing import TYPE_CHECKING

from ...lazy import lazy_module
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec
from .packet import _is_xdp, context

if TYPE_CHECKING:
    from ..fib import ForwardingTable

# runtime.fib, imported when a helper first runs: every object's helper table imports
# this module, and most programs do no FIB lookup.
_fib = lazy_module("..fib", __package__)

AF_INET, AF_INET6 = 2, 10
FIB_LOOKUP_SIZE = 64
"""sizeof(struct bpf_fib_lookup)."""

BPF_FIB_LOOKUP_DIRECT = 1 << 0
BPF_FIB_LOOKUP_OUTPUT = 1 << 1
BPF_FIB_LOOKUP_SKIP_NEIGH = 1 << 2
BPF_FIB_LOOKUP_TBID = 1 << 3
BPF_FIB_LOOKUP_SRC = 1 << 4
BPF_FIB_LOOKUP_MARK = 1 << 5
_FLAGS = (
    BPF_FIB_LOOKUP_DIRECT
    | BPF_FIB_LOOKUP_OUTPUT
    | BPF_FIB_LOOKUP_SKIP_NEIGH
    | BPF_FIB_LOOKUP_TBID
    | BPF_FIB_LOOKUP_SRC
    | BPF_FIB_LOOKUP_MARK
)

RET_SUCCESS, RET_BLACKHOLE, RET_UNREACHABLE, RET_PROHIBIT = 0, 1, 2, 3
RET_NOT_FWDED, RET_FWD_DISABLED, RET_UNSUPP_LWT, RET_NO_NEIGH = 4, 5, 6, 7
RET_FRAG_NEEDED, RET_NO_SRC_ADDR = 8, 9
_ERROR_ROUTES = {"blackhole": RET_BLACKHOLE, "unreachable": RET_UNREACHABLE}
_ERROR_ROUTES["prohibit"] = RET_PROHIBIT

VLAN_HLEN = 4
ETH_HLEN = 14

# Offsets in struct bpf_fib_lookup.
_FAMILY, _TOT_LEN, _IFINDEX, _METRIC, _SRC, _DST, _VLAN, _SMAC, _DMAC = (
    0, 6, 8, 12, 16, 32, 48, 52, 58,
)  # fmt: skip


def _table(env: HelperEnv) -> ForwardingTable:
    runtime = env.runtime
    table = getattr(runtime, "fib", None) if runtime is not None else None
    return table if table is not None else _fib().ForwardingTable()


def _address(params: bytearray, offset: int, family: int) -> ipaddress._BaseAddress:
    if family == AF_INET:
        return ipaddress.IPv4Address(bytes(params[offset : offset + 4]))
    return ipaddress.IPv6Address(bytes(params[offset : offset + 16]))


def _put_address(params: bytearray, offset: int, address: ipaddress._BaseAddress) -> None:
    params[offset : offset + len(address.packed)] = address.packed


def _u16(params: bytearray, offset: int) -> int:
    return struct.unpack_from("<H", params, offset)[0]


def _u32(params: bytearray, offset: int) -> int:
    return struct.unpack_from("<I", params, offset)[0]


def lookup(
    table: ForwardingTable, params: bytearray, flags: int, check_mtu: bool
) -> tuple[int, int]:
    """bpf_ipv{4,6}_fib_lookup on `params` (edited in place): (result, MTU checked or 0)."""
    fib = _fib()
    family = params[_FAMILY]
    dst = _address(params, _DST, family)
    src = _address(params, _SRC, family)
    if family == AF_INET6 and any(
        a.is_multicast or a.is_link_local or a.is_loopback for a in (dst, src)
    ):
        return RET_NOT_FWDED, 0  # rt6_need_strict: never forwarded
    ifindex = _u32(params, _IFINDEX)
    dev = table.interfaces.get(ifindex)
    if dev is None:
        return -errno.ENODEV, 0
    if not dev.forwarding:
        return RET_FWD_DISABLED, 0
    oif = ifindex if flags & BPF_FIB_LOOKUP_OUTPUT else 0
    if flags & BPF_FIB_LOOKUP_DIRECT:
        tbid = fib.RT_TABLE_MAIN
        if flags & BPF_FIB_LOOKUP_TBID:
            tbid = _u32(params, _VLAN)
            params[_VLAN : _VLAN + 4] = bytes(4)
        if not table.has_table(tbid, dst.version):
            return RET_NOT_FWDED, 0
        route = table.route(dst, (tbid,), oif)
    else:
        route = table.route(dst, (fib.RT_TABLE_LOCAL, fib.RT_TABLE_MAIN, fib.RT_TABLE_DEFAULT), oif)
    if route is None:
        return RET_NOT_FWDED, 0
    if route.type in _ERROR_ROUTES:
        return _ERROR_ROUTES[route.type], 0
    if route.type != "unicast":
        return RET_NOT_FWDED, 0
    out = table.interfaces[route.dev]
    mtu = 0
    if check_mtu:
        mtu = route.path_mtu(out)
        if _u16(params, _TOT_LEN) > mtu:
            struct.pack_into("<H", params, _TOT_LEN, mtu)
            return RET_FRAG_NEEDED, mtu
    if route.via is not None:
        _put_address(params, _DST, route.via)
        dst = route.via
    struct.pack_into("<II", params, _IFINDEX, out.ifindex, route.metric)
    if flags & BPF_FIB_LOOKUP_SRC:
        source = table.source_for(route, dst)
        if source is None and family == AF_INET6:
            return RET_NO_SRC_ADDR, mtu
        _put_address(params, _SRC, source or ipaddress.IPv4Address(0))
    if not flags & BPF_FIB_LOOKUP_SKIP_NEIGH:
        neighbour = table.neighbour(dst, out.ifindex)
        if neighbour is None:
            return RET_NO_NEIGH, mtu
        params[_DMAC : _DMAC + 6] = neighbour.mac
        params[_SMAC : _SMAC + 6] = out.mac
    params[_VLAN : _VLAN + 4] = bytes(4)
    if mtu:
        struct.pack_into("<H", params, _TOT_LEN, mtu)
    return RET_SUCCESS, mtu


def fib_lookup(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Look up the route of struct bpf_fib_lookup r2 (r3 bytes) with flags r4."""
    ctx = context(env, r1)
    size = r3 & 0xFFFFFFFF
    size = size - (1 << 32) if size >> 31 else size  # an int
    env.memory.check(r2, max(size, 0), write=True)
    if size < FIB_LOOKUP_SIZE:
        return -errno.EINVAL
    if (r4 & 0xFFFFFFFF) & ~_FLAGS:
        return -errno.EINVAL
    flags = r4 & 0xFFFFFFFF
    params = bytearray(env.memory.read(r2, FIB_LOOKUP_SIZE))
    family = params[_FAMILY]
    if family not in (AF_INET, AF_INET6):
        return -errno.EAFNOSUPPORT
    table = _table(env)
    xdp = _is_xdp(ctx)
    check_mtu = xdp or _u16(params, _TOT_LEN) != 0
    result, _ = lookup(table, params, flags, check_mtu)
    if result == RET_SUCCESS and not check_mtu:
        # bpf_skb_fib_lookup: the packet against the egress device's MTU.
        out = table.interfaces[_u32(params, _IFINDEX)]
        length = ctx.pointers["data_end"] - ctx.pointers["data"]
        if not out.up or length > out.mtu + ETH_HLEN + VLAN_HLEN:
            result = RET_FRAG_NEEDED
        struct.pack_into("<H", params, _TOT_LEN, out.mtu & 0xFFFF)
    env.memory.write(r2, bytes(params))
    return result


HELPERS: list[HelperSpec] = [helper_spec(HelperId.FIB_LOOKUP, fib_lookup)]
"""The helpers of this module."""
