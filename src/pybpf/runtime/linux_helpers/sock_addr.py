"""Helpers of socket-address programs (cgroup/bind4, connect6, sendmsg4, …).

What they answer comes from the socket of the call being decided
(`ExecutionContext.caller_socket`, a `runtime.sockets.CallerSocket` the
socket hooks set; None in a plain test run):

- `bpf_get_socket_cookie(ctx)`: the socket's cookie (the kernel's
  `SO_COOKIE`), 0 without a socket.
- `bpf_get_netns_cookie(ctx)`: the cookie of the socket's network namespace
  (`SO_NETNS_COOKIE`), with a NULL ctx or without a socket that of the
  namespace pybpf runs in (`init_net`'s, 1, in the kernel).
- `bpf_bind(ctx, addr, addr_len)` (connect hooks only, the verifier's
  table says so): binds the socket to a `struct sockaddr_in` / `_in6` before
  the connection, as the kernel's `bpf_bind` (`-EINVAL` for a length short
  of the family's struct, `-EAFNOSUPPORT` for another family); the bind
  itself is the hook's (`CallerSocket.bind`), its result returned. In a test
  run without a socket the address is recorded in `caller_socket.bound` when
  one is set, and the helper answers 0.
"""

from __future__ import annotations

import errno
import ipaddress
import struct

from ...lazy import lazy_module
from ...platform.helper_ids import HelperId
from ..caller import INIT_NET_COOKIE
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

_M64 = (1 << 64) - 1
# `socket`, imported when a helper first runs: every object's helper table imports
# this module.
_socket = lazy_module("socket")


def _caller(env: HelperEnv):
    runtime = env.runtime
    return None if runtime is None else getattr(runtime, "caller_socket", None)


def get_socket_cookie(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The cookie of the socket whose call the program decides (0 without one)."""
    caller = _caller(env)
    return 0 if caller is None else caller.cookie & _M64


def get_netns_cookie(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The cookie of the socket's network namespace (init_net's for NULL or no socket)."""
    caller = _caller(env)
    if r1 == 0 or caller is None or not caller.netns_cookie:
        return INIT_NET_COOKIE
    return caller.netns_cookie & _M64


def _sockaddr(data: bytes) -> tuple[int, tuple[str, int]] | int:
    """(family, (address, port)) of a struct sockaddr, or a negative errno."""
    socket = _socket()
    if len(data) < 2:
        return -errno.EINVAL
    family = struct.unpack_from("<H", data)[0]
    if family == socket.AF_INET:
        if len(data) < 16:
            return -errno.EINVAL
        port = struct.unpack_from("!H", data, 2)[0]
        return family, (str(ipaddress.IPv4Address(data[4:8])), port)
    if family == socket.AF_INET6:
        if len(data) < 28:
            return -errno.EINVAL
        port = struct.unpack_from("!H", data, 2)[0]
        return family, (str(ipaddress.IPv6Address(data[8:24])), port)
    return -errno.EAFNOSUPPORT


def bind(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Bind the caller's socket to the sockaddr at r2 (r3 bytes): 0 or -errno."""
    size = r3 & 0xFFFFFFFF
    parsed = _sockaddr(env.memory.read(r2, size))
    if isinstance(parsed, int):
        return parsed & _M64
    _, address = parsed
    caller = _caller(env)
    if caller is None:
        return 0
    if caller.bind is None:
        caller.bound = address
        return 0
    result = caller.bind(address)
    if result == 0:
        caller.bound = address
    return result & _M64


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.GET_SOCKET_COOKIE, get_socket_cookie),
    helper_spec(HelperId.GET_NETNS_COOKIE, get_netns_cookie),
    helper_spec(HelperId.BIND, bind),
]
