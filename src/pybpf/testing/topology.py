"""Network namespaces with veth pairs for tests and benchmarks on real traffic.

`Wire()` builds three namespaces: a client (`c0`, 10.77.0.1/24), a middle
one holding two unaddressed ports (`wa` facing the client, `wb` facing the
server) where a bump in the wire runs, and a server (`s0`, 10.77.0.2/24):

    client c0 ──veth── wa  [middle]  wb ──veth── s0 server

Nothing is routed anywhere else: traffic stays between these namespaces.
IPv6 is off (no router solicitations in counts) and so is the peers'
checksum offload (AF_PACKET would otherwise hand over frames with
unfinished checksums, and TCP segments longer than the MTU). Needs root
(`ip netns add`); `Wire.available()` says whether it can be built here.
`socket_in`, `ping` and friends act from inside a namespace, so that a
test needs no subprocess per packet.
"""

from __future__ import annotations

import ctypes
import fcntl
import itertools
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

from ..hooks.netns import in_netns
from .packets import checksum

__all__ = ["Wire", "ping", "socket_in", "tx_offload_off"]

CLIENT_IP = "10.77.0.1"
SERVER_IP = "10.77.0.2"
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17
_counter = itertools.count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def socket_in(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside namespace `netns` (a path), usable from any thread."""
    with in_netns(netns):
        return socket.socket(family, kind, proto)


def tx_offload_off(netns: str | None, ifname: str) -> None:
    """Turn off transmit checksum offload (and with it TSO) on `ifname`, as
    `ethtool -K IFNAME tx off` does."""
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    request = struct.pack("16sQ8x", ifname.encode(), ctypes.addressof(value))
    with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCETHTOOL, request)


def ping(netns: str | None, address: str, *, timeout: float = 1.0, ident: int = 0x7077) -> bool:
    """Send one ICMP echo request to `address` from namespace `netns`; True if the
    reply came back within `timeout` seconds."""
    with socket_in(netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        seq = next(_counter) & 0xFFFF
        body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"pybpf-ping"
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        s.sendto(body, (address, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                reply = s.recv(2048)
            except TimeoutError:
                return False
            icmp = reply[(reply[0] & 0xF) * 4 :]
            if icmp[0] == 0 and struct.unpack_from("!HH", icmp, 4) == (ident, seq):
                return True
        return False


class Wire:
    """The client / middle / server namespaces described in the module docstring."""

    def __init__(self) -> None:
        tag = f"pybpf{os.getpid()}x{next(_counter)}"
        self.client, self.middle, self.server = (f"{tag}{r}" for r in ("c", "m", "s"))
        self._made: list[str] = []
        #: The middle namespace's ports, facing the client and the server.
        self.port_a, self.port_b = "wa", "wb"
        try:
            for name in (self.client, self.middle, self.server):
                _ip("netns", "add", name)
                self._made.append(name)
                _ip("-n", name, "link", "set", "lo", "up")
                self._sysctl(name, "net/ipv6/conf/all/disable_ipv6", "1")
                self._sysctl(name, "net/ipv6/conf/default/disable_ipv6", "1")
            self._pair(self.client, "c0", self.middle, self.port_a)
            self._pair(self.middle, self.port_b, self.server, "s0")
            _ip("-n", self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "c0")
            _ip("-n", self.server, "addr", "add", f"{SERVER_IP}/24", "dev", "s0")
            for ns, dev in ((self.client, "c0"), (self.server, "s0")):
                tx_offload_off(self.path(ns), dev)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def available() -> str | None:
        """None when wires can be built here, else why not."""
        if os.geteuid() != 0:
            return "needs root (ip netns add)"
        if shutil.which("ip") is None:
            return "needs iproute2's ip"
        return None

    @staticmethod
    def path(name: str) -> str:
        """The bind-mounted namespace file of `name`."""
        return f"/run/netns/{name}"

    def _sysctl(self, ns: str, key: str, value: str) -> None:
        # Net sysctls show the namespace of the thread that opens them.
        with in_netns(self.path(ns)):
            Path("/proc/sys", key).write_text(value)

    def _pair(self, ns1: str, dev1: str, ns2: str, dev2: str) -> None:
        _ip(
            "link",
            "add",
            "name",
            dev1,
            "netns",
            ns1,
            "type",
            "veth",
            "peer",
            "name",
            dev2,
            "netns",
            ns2,
        )
        _ip("-n", ns1, "link", "set", "dev", dev1, "up")
        _ip("-n", ns2, "link", "set", "dev", dev2, "up")

    def close(self) -> None:
        """Delete the namespaces (and with them the veth pairs)."""
        for name in reversed(self._made):
            subprocess.run(
                ["ip", "netns", "del", name], check=False, capture_output=True, timeout=10
            )
        self._made.clear()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
