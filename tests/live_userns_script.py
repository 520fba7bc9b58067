"""Run by test_live.py inside `unshare -Urn`: a user and network namespace of our own,
where the kernel refuses bpf() (no CAP_BPF in the initial namespace) but AF_PACKET and
TAP work. An XDP program on veth x1 passes a UDP frame sent on x0 to a TAP device, where
this namespace's stack delivers it to a socket. Prints one JSON line of what it saw."""

import ctypes
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys

import pybpf
from pybpf.testing.packets import checksum

SIOCGIFHWADDR = 0x8927


def kernel_bpf_error() -> str:
    """What bpf(BPF_MAP_CREATE) of a small array map answers here."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 8, 1).ljust(128, b"\0"))
    fd = libc.syscall(321, 0, attr, 128)  # x86-64's __NR_bpf
    if fd >= 0:
        os.close(fd)
        return "allowed"
    return os.strerror(ctypes.get_errno())


def udp_frame(dst_mac: bytes, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 4444, 5555, 8 + len(payload), 0) + payload
    src, dst = socket.inet_aton("10.77.9.9"), socket.inet_aton("10.77.0.2")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + bytes.fromhex("020000000001") + b"\x08\x00" + ip + udp


def main() -> None:
    for args in (
        ["link", "set", "dev", "lo", "up"],
        ["link", "add", "name", "x0", "type", "veth", "peer", "name", "x1"],
        ["link", "set", "dev", "x0", "up"],
        ["link", "set", "dev", "x1", "up"],
    ):
        subprocess.run(["ip", *args], check=True)
    result = {"kernel_bpf": kernel_bpf_error(), "received": None}
    with pybpf.load(sys.argv[1]) as obj:
        link = obj.programs["xdp_wire_filter"].attach_xdp("x1", pass_to_tap="ptap0")
        subprocess.run(["ip", "addr", "add", "10.77.0.2/24", "dev", "ptap0"], check=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            tap_mac = fcntl.ioctl(s, SIOCGIFHWADDR, struct.pack("16s16x", b"ptap0"))[18:24]
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("10.77.0.2", 5555))
        server.settimeout(1)
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sender.bind(("x0", 0))
        for _ in range(5):
            sender.send(udp_frame(tap_mac, b"from-userns"))
            try:
                result["received"] = server.recv(100).decode()
                break
            except TimeoutError:
                pass
        counters = link.close()
        result["pass"] = counters.actions["pass"].frames
        result["udp_counted"] = int.from_bytes(obj.maps["stats"][struct.pack("<I", 1)], "little")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
