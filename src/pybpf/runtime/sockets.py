"""`SocketTable`: the sockets `bpf_sk_lookup_tcp`/`_udp` and `bpf_skc_lookup_tcp` find.

pybpf has no kernel sockets. A lookup answers from the execution context's
table (`obj.context.sockets`); without one (the default) every lookup finds
nothing and returns NULL, which is what a kernel answers for a tuple no
socket matches. A test or application adds sockets:

```python
from pybpf.runtime.sockets import Socket, SocketTable
obj.context.sockets = SocketTable([
    Socket("tcp", local=("10.0.0.1", 80)),                         # listening
    Socket("tcp", local=("10.0.0.1", 80), remote=("10.0.0.2", 4242)),  # established
    Socket("udp", local=("0.0.0.0", 53)),                          # bound, unconnected
])
```

The lookup tuple (`struct bpf_sock_tuple`) is the packet's view: `saddr`
and `sport` are the remote end, `daddr` and `dport` the local one. As the
kernel's socket hash tables (`__inet_lookup` / `__udp4_lib_lookup`): a
connected socket whose local and remote ends equal the tuple's wins, else
a listening (TCP) or unconnected (UDP) socket whose local port is `dport`
and whose local address is `daddr`, else the wildcard (`0.0.0.0`, `::`).
Addresses of the tuple's family only (IPv4 for a 12-byte tuple, IPv6 for a
36-byte one).

A socket found is shown to the program as a read-only `struct bpf_sock`
(`bpf_sock_bytes`: family, type, protocol, mark, priority, local address
as `src_ip4`/`src_ip6` and `src_port` in host order, remote address as
`dst_ip4`/`dst_ip6` and `dst_port` in network order, TCP state,
`rx_queue_mapping` -1), one region per socket for the context's lifetime.
References are the verifier's business (every lookup's result is released
with `bpf_sk_release` on every path); at run time a release does nothing.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

AF_INET, AF_INET6 = 2, 10
SOCK_STREAM, SOCK_DGRAM = 1, 2
IPPROTO_TCP, IPPROTO_UDP = 6, 17
TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10
BPF_SOCK_SIZE = 80
"""sizeof(struct bpf_sock)."""

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Socket:
    """One socket: protocol ("tcp" or "udp"), local end, remote end if connected.

    `state` defaults to the kernel's: TCP established with a remote end,
    listening without; UDP established when connected, else closed
    (TCP_CLOSE, as an unconnected UDP socket reports).
    """

    protocol: str
    local: tuple[str, int]
    remote: tuple[str, int] | None = None
    state: int | None = None
    mark: int = 0
    priority: int = 0
    bound_dev_if: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be 'tcp' or 'udp', not {self.protocol!r}")
        families = {ipaddress.ip_address(self.local[0]).version}
        if self.remote is not None:
            families.add(ipaddress.ip_address(self.remote[0]).version)
        if len(families) != 1:
            raise ValueError("local and remote addresses of one family")

    @property
    def family(self) -> int:
        """AF_INET or AF_INET6."""
        return AF_INET if ipaddress.ip_address(self.local[0]).version == 4 else AF_INET6

    @property
    def tcp_state(self) -> int:
        """The state `struct bpf_sock.state` shows."""
        if self.state is not None:
            return self.state
        if self.remote is not None:
            return TCP_ESTABLISHED
        return TCP_LISTEN if self.protocol == "tcp" else TCP_CLOSE

    def bpf_sock_bytes(self) -> bytes:
        """This socket as `struct bpf_sock` (include/uapi/linux/bpf.h)."""
        local = ipaddress.ip_address(self.local[0])
        remote = ipaddress.ip_address(self.remote[0]) if self.remote else None
        tcp = self.protocol == "tcp"
        raw = bytearray(BPF_SOCK_SIZE)
        struct.pack_into(
            "<6I",
            raw,
            0,
            self.bound_dev_if,
            self.family,
            SOCK_STREAM if tcp else SOCK_DGRAM,
            IPPROTO_TCP if tcp else IPPROTO_UDP,
            self.mark & 0xFFFFFFFF,
            self.priority & 0xFFFFFFFF,
        )
        if local.version == 4:
            raw[24:28] = local.packed
        else:
            raw[28:44] = local.packed
        struct.pack_into("<I", raw, 44, self.local[1])
        if self.remote is not None and remote is not None:
            struct.pack_into(">H", raw, 48, self.remote[1])
            if remote.version == 4:
                raw[52:56] = remote.packed
            else:
                raw[56:72] = remote.packed
        struct.pack_into("<Ii", raw, 72, self.tcp_state, -1)
        return bytes(raw)


class SocketTable:
    """The sockets of the simulated host (see the module docstring)."""

    def __init__(self, sockets: Iterable[Socket] = ()) -> None:
        self.sockets: list[Socket] = list(sockets)

    def add(self, sock: Socket) -> Socket:
        """Add a socket; return it."""
        self.sockets.append(sock)
        return sock

    def lookup(
        self, protocol: str, saddr: _Address, sport: int, daddr: _Address, dport: int
    ) -> Socket | None:
        """The socket a packet from (saddr, sport) to (daddr, dport) belongs to, or None."""
        wildcard = ipaddress.ip_address("0.0.0.0" if daddr.version == 4 else "::")
        exact = anywhere = None
        for sock in self.sockets:
            local = ipaddress.ip_address(sock.local[0])
            if sock.protocol != protocol or local.version != daddr.version:
                continue
            if sock.local[1] != dport:
                continue
            if sock.remote is not None:
                remote = ipaddress.ip_address(sock.remote[0])
                if local == daddr and (remote, sock.remote[1]) == (saddr, sport):
                    return sock
            elif local == daddr and exact is None:
                exact = sock
            elif local == wildcard and anywhere is None:
                anywhere = sock
        return exact or anywhere


@dataclass
class CallerSocket:
    """The socket of the call a sock_addr program is deciding (`obj.context.caller_socket`,
    set by the socket hooks for the length of one decision).

    `cookie` and `netns_cookie` are what `bpf_get_socket_cookie` and
    `bpf_get_netns_cookie` answer; `bind` (an address tuple → 0 or -errno),
    when set, performs `bpf_bind` on the real socket; `bound` records the
    address a program bound it to.
    """

    cookie: int = 0
    netns_cookie: int = 0
    bind: Any = None
    bound: tuple[str, int] | None = None
