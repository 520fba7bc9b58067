"""Socket lookups against the execution context's `SocketTable` (`runtime.sockets`).

`bpf_sk_lookup_tcp`, `bpf_sk_lookup_udp` and `bpf_skc_lookup_tcp`
(net/core/filter.c `bpf_sk_lookup`, Linux 6.18) take the context, a
`struct bpf_sock_tuple` and its size, a network namespace id and flags.
As in the kernel, nonzero flags, a namespace id that is neither negative
(as a 32-bit value: the current namespace, BPF_F_CURRENT_NETNS) nor a
valid id, and a size other than sizeof(tuple->ipv4) (12) or
sizeof(tuple->ipv6) (36) find nothing: NULL. pybpf has one network
namespace, so a non-negative id finds nothing either. Otherwise the table
answers (`SocketTable.lookup`; no table: NULL) and the result is the
address of the socket's read-only `struct bpf_sock`. The verifier makes
the program release every socket it got (`bpf_sk_release`, which returns
0 and does nothing else here).
"""

from __future__ import annotations

import ipaddress
import struct

from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

TUPLE_IPV4_SIZE = 12
"""sizeof(((struct bpf_sock_tuple *)0)->ipv4)."""
TUPLE_IPV6_SIZE = 36
"""sizeof(((struct bpf_sock_tuple *)0)->ipv6)."""

_S32_MAX = (1 << 31) - 1


def _lookup(
    env: HelperEnv, protocol: str, tuple_ptr: int, size: int, netns: int, flags: int
) -> int:
    size &= 0xFFFFFFFF
    if flags or not ((netns & 0xFFFFFFFF) >> 31 or netns <= _S32_MAX):
        return 0
    if (netns & 0xFFFFFFFF) >> 31 == 0:
        return 0  # a namespace id: pybpf has only the current namespace
    if size == TUPLE_IPV4_SIZE:
        raw = env.memory.read(tuple_ptr, size)
        saddr, daddr = ipaddress.IPv4Address(raw[0:4]), ipaddress.IPv4Address(raw[4:8])
        sport, dport = struct.unpack_from(">HH", raw, 8)
    elif size == TUPLE_IPV6_SIZE:
        raw = env.memory.read(tuple_ptr, size)
        saddr, daddr = ipaddress.IPv6Address(raw[0:16]), ipaddress.IPv6Address(raw[16:32])
        sport, dport = struct.unpack_from(">HH", raw, 32)
    else:
        return 0
    runtime = env.runtime
    table = getattr(runtime, "sockets", None)
    if table is None:
        return 0
    sock = table.lookup(protocol, saddr, sport, daddr, dport)
    return runtime.socket_address(sock) if sock is not None else 0


def sk_lookup_tcp(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The TCP socket (full socket) of the tuple at r2 (r3 bytes), or NULL."""
    return _lookup(env, "tcp", r2, r3, r4, r5)


def sk_lookup_udp(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The UDP socket of the tuple at r2 (r3 bytes), or NULL."""
    return _lookup(env, "udp", r2, r3, r4, r5)


def skc_lookup_tcp(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The TCP socket (as sock_common) of the tuple at r2 (r3 bytes), or NULL."""
    return _lookup(env, "tcp", r2, r3, r4, r5)


def sk_release(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Drop the program's reference to the socket at r1: 0 (nothing is refcounted here)."""
    return 0


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.SK_LOOKUP_TCP, sk_lookup_tcp),
    helper_spec(HelperId.SK_LOOKUP_UDP, sk_lookup_udp),
    helper_spec(HelperId.SK_RELEASE, sk_release),
    helper_spec(HelperId.SKC_LOOKUP_TCP, skc_lookup_tcp),
]
"""The helpers of this module."""
