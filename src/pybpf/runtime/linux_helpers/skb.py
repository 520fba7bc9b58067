"""sk_buff helpers that reshape the packet: adjust_room, pull_data, vlan_push/pop, change_proto.

Semantics of net/core/filter.c and net/core/skbuff.c (Linux 6.18) for the
linear skb of a tc test run (`hooks.test_run`): skb->data is at the MAC
header, the network header follows it at `mac_len` bytes (14 after
`eth_type_trans`, more once a VLAN tag has been pushed into the payload),
the packet is CHECKSUM_NONE and not GSO unless the test set gso_size.

State the program can read lives in the `__sk_buff` image (`len`,
`protocol`, `vlan_present`, `vlan_tci`, `vlan_proto`); state it cannot see
(`mac_len`, `encapsulation`) is kept in the context's pointer table next to
the packet bounds. Growing uses the headroom of the test run's buffer (64
bytes in front of the packet); beyond it the packet moves to a bigger
buffer, as the kernel reallocates the head (`runtime.packet_buffer`).

`protocol` and `vlan_proto` hold a big-endian u16 as the program reads it
(a load of the `__be16`), e.g. 0x0081 for ETH_P_8021Q; helper arguments
of type `__be16` come in the same form (`bpf_htons(ETH_P_8021Q)`).
"""

from __future__ import annotations

import ctypes
import errno

from ...platform.contexts import SK_BUFF
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..memory import ContextRegion
from ..packet_buffer import ensure_room
from . import helper_spec
from .packet import (
    BPF_SKB_MAX_LEN,
    ENOTSUPP,
    ETH_HLEN,
    _is_xdp,
    _set_skb_len,
    context,
    set_packet_bounds,
)

VLAN_HLEN = 4
VLAN_ETH_HLEN = 18
IPV4_HLEN = 20
IPV6_HLEN = 40


def _be16(value: int) -> int:
    """An EtherType as a `__be16` loaded little-endian (what the program and skb fields hold)."""
    return int.from_bytes(value.to_bytes(2, "big"), "little")


ETH_P_IP, ETH_P_IPV6 = _be16(0x0800), _be16(0x86DD)
ETH_P_8021Q, ETH_P_8021AD = _be16(0x8100), _be16(0x88A8)
ETH_P_802_3, ETH_P_802_2 = _be16(0x0001), _be16(0x0004)
_VLAN_TYPES = (ETH_P_8021Q, ETH_P_8021AD)

BPF_ADJ_ROOM_NET, BPF_ADJ_ROOM_MAC = 0, 1
BPF_F_ADJ_ROOM_FIXED_GSO = 1 << 0
BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 = 1 << 1
BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 = 1 << 2
BPF_F_ADJ_ROOM_ENCAP_L4_GRE = 1 << 3
BPF_F_ADJ_ROOM_ENCAP_L4_UDP = 1 << 4
BPF_F_ADJ_ROOM_NO_CSUM_RESET = 1 << 5
BPF_F_ADJ_ROOM_ENCAP_L2_ETH = 1 << 6
BPF_F_ADJ_ROOM_DECAP_L3_IPV4 = 1 << 7
BPF_F_ADJ_ROOM_DECAP_L3_IPV6 = 1 << 8
BPF_ADJ_ROOM_ENCAP_L2_SHIFT = 56
_ENCAP_L3 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L3_IPV6
_DECAP_L3 = BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_DECAP_L3_IPV6
_ADJ_ROOM_MASK = (
    BPF_F_ADJ_ROOM_FIXED_GSO
    | _ENCAP_L3
    | BPF_F_ADJ_ROOM_ENCAP_L4_GRE
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH
    | 0xFF << BPF_ADJ_ROOM_ENCAP_L2_SHIFT
    | _DECAP_L3
)

_M16 = 0xFFFF
_M32 = 0xFFFFFFFF


def _skb(env: HelperEnv, pointer: int) -> ContextRegion | None:
    """The skb context at `pointer`, or None when it is not an skb with a buffer."""
    ctx = context(env, pointer)
    if _is_xdp(ctx) or "head" not in ctx.pointers:
        return None
    return ctx


def _field(ctx: ContextRegion, name: str) -> int:
    f = SK_BUFF.field(name)
    return int.from_bytes(ctx.view[f.offset : f.end], "little")


def _set_field(ctx: ContextRegion, name: str, value: int) -> None:
    f = SK_BUFF.field(name)
    ctx.view[f.offset : f.end] = (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")


def _length(ctx: ContextRegion) -> int:
    return ctx.pointers["data_end"] - ctx.pointers["data"]


def _mac_len(ctx: ContextRegion) -> int:
    p = ctx.pointers
    return p["mac_len"] if "mac_len" in p else ETH_HLEN


def _move_data(env: HelperEnv, ctx: ContextRegion, data: int) -> None:
    """Make skb->data (and data_meta) `data`; the packet region and `len` follow."""
    p = ctx.pointers
    set_packet_bounds(env.memory, ctx, data, p["data_end"])
    p["data"] = p["data_meta"] = data
    _set_skb_len(ctx)


def _push(env: HelperEnv, ctx: ContextRegion, off: int, room: int) -> int:
    """bpf_skb_generic_push: `room` zeroed bytes at `off`, the first `off` bytes moved up."""
    if not ensure_room(ctx, head=room):  # skb_cow_head: reallocate when short
        return -errno.ENOMEM
    data = ctx.pointers["data"]
    ctypes.memmove(data - room, data, off)
    ctypes.memset(data - room + off, 0, room)
    _move_data(env, ctx, data - room)
    return 0


def _pop(env: HelperEnv, ctx: ContextRegion, off: int, room: int) -> int:
    """bpf_skb_generic_pop: remove `room` bytes at `off`, the first `off` bytes moved down."""
    if off + room > _length(ctx):
        return -errno.ENOMEM
    data = ctx.pointers["data"]
    ctypes.memmove(data + room, data, off)
    _move_data(env, ctx, data + room)
    return 0


# -- pull_data, change_proto, adjust_room ------------------------------------------------


def skb_pull_data(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Make r2 bytes (0: the linear part) directly accessible: 0, or -ENOMEM past the packet."""
    ctx = _skb(env, r1)
    if ctx is None:
        return -ENOTSUPP
    # A test-run skb is linear: everything up to skb->len is there already.
    return 0 if (r2 & _M32) <= _length(ctx) else -errno.ENOMEM


def skb_change_proto(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """IPv4 ↔ IPv6: make room for (or remove) the 20 bytes the headers differ by."""
    ctx = _skb(env, r1)
    if ctx is None:
        return -ENOTSUPP
    if r3:
        return -errno.EINVAL
    to, current = r2 & _M16, _field(ctx, "protocol")
    if current == ETH_P_IP and to == ETH_P_IPV6:
        result = _push(env, ctx, _mac_len(ctx), IPV6_HLEN - IPV4_HLEN)
    elif current == ETH_P_IPV6 and to == ETH_P_IP:
        result = _pop(env, ctx, _mac_len(ctx), IPV6_HLEN - IPV4_HLEN)
    else:
        return -ENOTSUPP
    if result == 0:
        _set_field(ctx, "protocol", to)
    return result


def _net_base_len(protocol: int) -> int:
    return {ETH_P_IP: IPV4_HLEN, ETH_P_IPV6: IPV6_HLEN}.get(protocol, _M32)


def skb_adjust_room(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Grow or shrink the room at the MAC or network header by the signed r2 (r3 mode, r4 flags)."""
    ctx = _skb(env, r1)
    if ctx is None:
        return -ENOTSUPP
    diff = r2 & _M32
    diff = diff - (1 << 32) if diff >> 31 else diff
    mode, flags = r3 & _M32, r4
    shrink, size = diff < 0, abs(diff)
    protocol = _field(ctx, "protocol")
    len_min = _net_base_len(protocol)
    if flags & ~(_ADJ_ROOM_MASK | BPF_F_ADJ_ROOM_NO_CSUM_RESET):
        return -errno.EINVAL
    if size > 0xFFF:
        return -errno.EFAULT
    if protocol not in (ETH_P_IP, ETH_P_IPV6):
        return -ENOTSUPP
    mac_len = _mac_len(ctx)
    if mode == BPF_ADJ_ROOM_NET:
        off = mac_len + len_min
    elif mode == BPF_ADJ_ROOM_MAC:
        off = mac_len
    else:
        return -ENOTSUPP
    if flags & _DECAP_L3:
        if not shrink:
            return -errno.EINVAL
        decap = flags & _DECAP_L3
        if decap == _DECAP_L3:
            return -errno.EINVAL
        len_min = IPV4_HLEN if decap == BPF_F_ADJ_ROOM_DECAP_L3_IPV4 else IPV6_HLEN
    length = _length(ctx)
    len_cur = length - mac_len
    if shrink and (size >= len_cur or len_cur - size < len_min):
        return -ENOTSUPP
    if not shrink and length + size > BPF_SKB_MAX_LEN and not _field(ctx, "gso_size"):
        return -ENOTSUPP
    if shrink:
        return _net_shrink(env, ctx, off, size, flags)
    return _net_grow(env, ctx, off, size, flags)


def _net_grow(env: HelperEnv, ctx: ContextRegion, off: int, size: int, flags: int) -> int:
    inner_mac_len = flags >> BPF_ADJ_ROOM_ENCAP_L2_SHIFT & 0xFF
    encap = bool(flags & _ENCAP_L3)
    if _field(ctx, "gso_size"):
        return -ENOTSUPP  # a test run's GSO skb has no gso_type: neither TCP nor UDP_L4
    if encap:
        if flags & _ENCAP_L3 == _ENCAP_L3:
            return -errno.EINVAL
        gre_udp = BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
        if flags & gre_udp == gre_udp:
            return -errno.EINVAL
        if flags & BPF_F_ADJ_ROOM_ENCAP_L2_ETH and inner_mac_len < ETH_HLEN:
            return -errno.EINVAL
        if ctx.pointers.get("encapsulation"):
            return -errno.EALREADY
        if inner_mac_len > size:
            return -errno.EINVAL
    result = _push(env, ctx, off, size)
    if result or not encap:
        return result
    ctx.pointers["encapsulation"] = 1
    protocol = _field(ctx, "protocol")
    if protocol == ETH_P_IP and flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6:
        _set_field(ctx, "protocol", ETH_P_IPV6)
    elif protocol == ETH_P_IPV6 and flags & BPF_F_ADJ_ROOM_ENCAP_L3_IPV4:
        _set_field(ctx, "protocol", ETH_P_IP)
    return 0


def _net_shrink(env: HelperEnv, ctx: ContextRegion, off: int, size: int, flags: int) -> int:
    if flags & ~(BPF_F_ADJ_ROOM_FIXED_GSO | _DECAP_L3 | BPF_F_ADJ_ROOM_NO_CSUM_RESET):
        return -errno.EINVAL
    if _field(ctx, "gso_size"):
        return -ENOTSUPP  # as in _net_grow
    result = _pop(env, ctx, off, size)
    if result:
        return result
    protocol = _field(ctx, "protocol")
    if protocol == ETH_P_IP and flags & BPF_F_ADJ_ROOM_DECAP_L3_IPV6:
        _set_field(ctx, "protocol", ETH_P_IPV6)
    elif protocol == ETH_P_IPV6 and flags & BPF_F_ADJ_ROOM_DECAP_L3_IPV4:
        _set_field(ctx, "protocol", ETH_P_IP)
    return 0


# -- VLAN ------------------------------------------------------------------------------


def _put_tag(ctx: ContextRegion, proto: int, tci: int) -> None:
    """__vlan_hwaccel_put_tag (proto 0: clear the tag)."""
    _set_field(ctx, "vlan_proto", proto)
    _set_field(ctx, "vlan_tci", tci & _M16)
    _set_field(ctx, "vlan_present", 1 if proto or tci else 0)


def skb_vlan_push(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Tag the skb with (r2 proto, r3 TCI); a tag already there moves into the payload."""
    ctx = _skb(env, r1)
    if ctx is None:
        return -ENOTSUPP
    proto, tci = r2 & _M16, r3 & _M16
    if proto not in _VLAN_TYPES:
        proto = ETH_P_8021Q
    if _field(ctx, "vlan_present"):
        # __vlan_insert_tag: 4 bytes after the MAC addresses hold the old tag.
        if not ensure_room(ctx, head=VLAN_HLEN):  # __vlan_insert_tag's skb_cow_head
            return -errno.ENOMEM
        data = ctx.pointers["data"]
        old_proto, old_tci = _field(ctx, "vlan_proto"), _field(ctx, "vlan_tci")
        ctypes.memmove(data - VLAN_HLEN, data, 2 * 6)
        tag = old_proto.to_bytes(2, "little") + old_tci.to_bytes(2, "big")
        ctypes.memmove(data - VLAN_HLEN + 12, tag, VLAN_HLEN)
        _move_data(env, ctx, data - VLAN_HLEN)
        _set_field(ctx, "protocol", old_proto)
        ctx.pointers["mac_len"] = _mac_len(ctx) + VLAN_HLEN
    _put_tag(ctx, proto, tci)
    return 0


def _vlan_pop_payload(env: HelperEnv, ctx: ContextRegion) -> tuple[int, int]:
    """__skb_vlan_pop: (0, TCI of the tag removed from the payload) or (-errno, 0)."""
    if _length(ctx) < VLAN_ETH_HLEN:
        return -errno.ENOMEM, 0
    data = ctx.pointers["data"]
    header = ctypes.string_at(data, VLAN_ETH_HLEN)
    tci = int.from_bytes(header[14:16], "big")
    ctypes.memmove(data + VLAN_HLEN, data, 2 * 6)
    encapsulated = int.from_bytes(header[16:18], "big")
    if encapsulated >= 0x0600:  # eth_proto_is_802_3
        protocol = _be16(encapsulated)
    elif ctypes.string_at(data + VLAN_ETH_HLEN, 2) == b"\xff\xff":
        protocol = ETH_P_802_3
    else:
        protocol = ETH_P_802_2
    _set_field(ctx, "protocol", protocol)
    _move_data(env, ctx, data + VLAN_HLEN)
    ctx.pointers["mac_len"] = max(_mac_len(ctx) - VLAN_HLEN, ETH_HLEN)
    return 0, tci


def skb_vlan_pop(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Remove the outer VLAN tag (the skb's, or the payload's); a next tag becomes the skb's."""
    ctx = _skb(env, r1)
    if ctx is None:
        return -ENOTSUPP
    if _field(ctx, "vlan_present"):
        _put_tag(ctx, 0, 0)
    else:
        if _field(ctx, "protocol") not in _VLAN_TYPES:
            return 0
        error, _ = _vlan_pop_payload(env, ctx)
        if error:
            return error
    proto = _field(ctx, "protocol")
    if proto not in _VLAN_TYPES:
        return 0
    error, tci = _vlan_pop_payload(env, ctx)
    if error:
        return error
    _put_tag(ctx, proto, tci)
    return 0


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.SKB_PULL_DATA, skb_pull_data),
    helper_spec(HelperId.SKB_CHANGE_PROTO, skb_change_proto),
    helper_spec(HelperId.SKB_ADJUST_ROOM, skb_adjust_room),
    helper_spec(HelperId.SKB_VLAN_PUSH, skb_vlan_push),
    helper_spec(HelperId.SKB_VLAN_POP, skb_vlan_pop),
]
"""The helpers of this module."""
