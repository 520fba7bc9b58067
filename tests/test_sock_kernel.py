"""pybpf's socket supervisor beside the kernel's own cgroup sock_addr hooks: the same
object, the same policy in its maps, the same client; every call must end the same
(errno, where it connected, where it bound) and the programs' maps must agree.
Skips without root, libbpf, bpf() or a cgroup v2 mount. Loopback only."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import pybpf
from pybpf.hooks import seccomp
from pybpf.hooks.sock_addr import SockAddrHook
from pybpf.hooks.sock_supervisor import SockSupervisor
from pybpf.platform.program_types import AttachType
from pybpf.testing.kernel import (
    KernelCgroup,
    KernelObject,
    cgroup2_root,
    kernel_available,
    unavailable_reason,
)

SOCK = Path(__file__).resolve().parents[1] / "examples" / "sock"

pytestmark = [
    pytest.mark.skipif(not kernel_available(), reason=unavailable_reason()),
    pytest.mark.skipif(cgroup2_root() is None, reason="no cgroup v2 mount"),
    pytest.mark.skipif(
        seccomp.unsupported_reason() is not None, reason=str(seccomp.unsupported_reason())
    ),
]


def endpoint(ip: str, port: int) -> bytes:
    return socket.inet_aton(ip) + struct.pack("!H", port) + bytes(2)


CLIENT = """
import socket, sys
for spec in sys.argv[1:]:
    kind, host, port = spec.split(":")
    if kind == "tcp":
        s = socket.socket(); s.settimeout(5)
        try:
            s.connect((host, int(port))); print(spec, "connected", s.getpeername()[1])
        except OSError as e:
            print(spec, "errno", e.errno)
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((host, int(port))); print(spec, "connected", s.getpeername())
        except OSError as e:
            print(spec, "errno", e.errno)
    else:
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port))); print(spec, "bound", s.getsockname())
        except OSError as e:
            print(spec, "errno", e.errno)
    s.close()
"""


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(10)

    def accept() -> None:
        for _ in range(64):
            try:
                server.accept()[0].close()
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server


def _policy(maps, port: int) -> None:
    maps["deny"].update(endpoint("127.0.0.1", 9), b"\x01")
    maps["deny"].update(endpoint("0.0.0.0", 47011), b"\x01")
    maps["redirect"].update(endpoint("10.99.0.1", 80), endpoint("127.0.0.1", port))
    maps["redirect"].update(endpoint("0.0.0.0", 47012), endpoint("127.0.0.1", 47013))


class _KernelMaps:
    def __init__(self, obj: KernelObject) -> None:
        self.obj = obj

    def __getitem__(self, name: str):
        return self.obj.map(name)


class _PybpfMaps:
    def __init__(self, obj) -> None:
        self.obj = obj

    def __getitem__(self, name: str):
        return _PybpfMap(self.obj.maps[name])


class _PybpfMap:
    """A pybpf map with the kernel seam's `update`/`lookup` names."""

    def __init__(self, map_) -> None:
        self.map = map_

    def update(self, key: bytes, value: bytes) -> None:
        self.map.update(key, value)

    def lookup(self, key: bytes) -> bytes:
        return bytes(self.map.lookup(key))


CALLS = [
    "tcp:127.0.0.1:9",  # denied
    "tcp:10.99.0.1:80",  # redirected to the listener
    "tcp:127.0.0.1:{port}",  # allowed
    "tcp:127.0.0.1:1",  # allowed, then refused by the kernel (nothing listens)
    "udp:127.0.0.1:9",  # a UDP connect denied
    "udp:10.99.0.1:80",  # a UDP connect redirected
    "bind:127.0.0.1:47011",  # a bind to a denied port
    "bind:127.0.0.1:47012",  # a bind redirected to another port
    "bind:127.0.0.1:47014",  # a bind allowed
]
OBJECTS = {
    "connect4_policy": (SOCK / "connect4_policy.o", AttachType.CGROUP_INET4_CONNECT),
    "bind4_policy": (SOCK / "bind4_policy.o", AttachType.CGROUP_INET4_BIND),
}


def _counts(maps) -> list[bytes]:
    return [maps["counts"].lookup(struct.pack("<I", v)) for v in range(3)]


def _under_the_kernel(command: list[str], port: int) -> tuple[str, list[list[bytes]]]:
    objects = {name: KernelObject(path) for name, (path, _) in OBJECTS.items()}
    try:
        for obj in objects.values():
            _policy(_KernelMaps(obj), port)
        attachments = [(objects[name].program(name), int(t)) for name, (_, t) in OBJECTS.items()]
        with KernelCgroup(attachments) as cgroup:
            out = cgroup.run(command, capture_output=True, text=True, timeout=60).stdout
        return out, [_counts(_KernelMaps(obj)) for obj in objects.values()]
    finally:
        for obj in objects.values():
            obj.close()


def _under_pybpf(command: list[str], port: int) -> tuple[str, list[list[bytes]]]:
    objects = {name: pybpf.load(path) for name, (path, _) in OBJECTS.items()}
    try:
        for obj in objects.values():
            _policy(_PybpfMaps(obj), port)
            obj.load()
        hook = SockAddrHook([obj.programs[name] for name, obj in objects.items()])
        supervisor = SockSupervisor(hook)
        supervisor.start(command, stdout=subprocess.PIPE, text=True)
        try:
            supervisor.wait(60)
            out = supervisor.process.stdout.read()
        finally:
            counters = supervisor.close()
        assert counters.errors == 0, counters.last_errors
        return out, [_counts(_PybpfMaps(obj)) for obj in objects.values()]
    finally:
        for obj in objects.values():
            obj.close()


def test_the_supervisor_ends_every_call_as_the_kernels_cgroup_hooks_do():
    server = _listener()
    port = server.getsockname()[1]
    calls = [call.format(port=port) for call in CALLS]
    command = [sys.executable, "-c", textwrap.dedent(CLIENT), *calls]
    try:
        kernel_out, kernel_counts = _under_the_kernel(command, port)
        pybpf_out, pybpf_counts = _under_pybpf(command, port)
    finally:
        server.close()
    # every line is deterministic: errnos, the peer of a TCP connect (the listener's
    # port), a UDP connect's peer, a bind's own address
    assert len(kernel_out.splitlines()) == len(calls)
    assert pybpf_out.splitlines() == kernel_out.splitlines()
    assert pybpf_counts == kernel_counts  # the programs' own records of their decisions


SOURCES = """  # IP_PKTINFO is 8 (Python 3.11 has no name for it)
import socket, struct, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
info = [(socket.IPPROTO_IP, 8, struct.pack("<i4s4s", 0, socket.inet_aton("127.0.0.3"), bytes(4)))]
s.sendto(b"plain-to-a", ("127.0.0.1", a))
s.sendmsg([b"pktinfo-to-b"], info, 0, ("127.0.0.1", b))
s.sendmsg([b"pktinfo-to-a"], info, 0, ("127.0.0.1", a))
"""


def _receive(sockets: list[socket.socket]) -> list[tuple[bytes, str]]:
    got = []
    for sock_ in sockets:
        sock_.settimeout(5)
        try:
            while True:
                data, (host, _) = sock_.recvfrom(100)
                got.append((data, host))
                sock_.settimeout(0.2)
        except OSError:
            pass
    return sorted(got)


def test_a_programs_source_address_for_udp_sends_as_the_kernel_applies_it():
    # msg_src_ip4: sendmsg4_source.o sends datagrams to port a from 127.0.0.2; an
    # IP_PKTINFO source is what the program sees and, left alone, what is used
    def receivers() -> list[socket.socket]:
        out = []
        for _ in range(2):
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.bind(("0.0.0.0", 0))
            out.append(r)
        return out

    results = {}
    for side in ("kernel", "pybpf"):
        rx = receivers()
        ports = [r.getsockname()[1] for r in rx]
        command = [sys.executable, "-c", textwrap.dedent(SOURCES), *map(str, ports)]
        key, value = struct.pack("!H", ports[0]), socket.inet_aton("127.0.0.2")
        if side == "kernel":
            with KernelObject(SOCK / "sendmsg4_source.o") as obj:
                obj.map("source").update(key, value)
                attach = [(obj.program("sendmsg4_source"), int(AttachType.CGROUP_UDP4_SENDMSG))]
                with KernelCgroup(attach) as cgroup:
                    cgroup.run(command, timeout=60, check=True)
                asked = obj.map("asked").lookup(bytes(4))
        else:
            with pybpf.load(SOCK / "sendmsg4_source.o") as obj:
                obj.maps["source"][key] = value
                obj.load()
                supervisor = SockSupervisor(SockAddrHook(obj.programs.values()))
                supervisor.start(command)
                try:
                    assert supervisor.wait(60) == 0
                finally:
                    assert supervisor.close().errors == 0
                asked = bytes(obj.maps["asked"][bytes(4)])
        results[side] = (_receive(rx), asked)
        for r in rx:
            r.close()
    assert results["pybpf"] == results["kernel"]
    datagrams, asked = results["kernel"]
    assert datagrams == [
        (b"pktinfo-to-a", "127.0.0.2"),  # the program's source replaced the PKTINFO one
        (b"pktinfo-to-b", "127.0.0.3"),  # the PKTINFO source, kept
        (b"plain-to-a", "127.0.0.2"),  # the program's source
    ]
    assert asked == socket.inet_aton("127.0.0.3")  # what the last send asked for
