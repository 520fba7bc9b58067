"""The real-kernel seam (pybpf.testing.kernel) against the example programs.

Each example is loaded into the kernel through libbpf and run on packets
built by pybpf.testing.packets; the expected verdicts and map contents are
what the program's C source implies. Kernel tests skip without root,
libbpf or a working bpf() syscall; the packet-builder tests always run.
"""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path

import pytest

from pybpf.testing import packets as P
from pybpf.testing.kernel import KernelError, KernelObject, kernel_available, unavailable_reason

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
TC_ACT_OK, TC_ACT_SHOT = 0, 2

needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def as_u64(raw: bytes) -> int:
    return struct.unpack("<Q", raw)[0]


# -- packet builders (no kernel needed) ----------------------------------------


#: Sample frames that are not complete IPv4 packets, and what each one is instead.
NOT_IPV4 = {
    "arp": "arp",
    "ipv6": "ipv6",
    "short_eth": "truncated",
    "short_ip": "truncated",
}


@pytest.mark.parametrize("name", sorted(P.sample_packets()))
def test_sample_packets_have_valid_checksums(name: str) -> None:
    """Every sample frame is checked: IPv4 checksums, or the shape of the non-IPv4 ones."""
    frame = P.sample_packets()[name]
    kind = NOT_IPV4.get(name, "ipv4")
    if kind == "arp":
        assert len(frame) == 60 and frame[12:14] == struct.pack("!H", P.ETH_P_ARP)
        # Ethernet/IPv4 request, 6-byte and 4-byte addresses
        assert struct.unpack("!HHBBH", frame[14:22]) == (1, P.ETH_P_IP, 6, 4, 1)
        return
    if kind == "ipv6":
        assert len(frame) == 14 + 40 and frame[12:14] == struct.pack("!H", P.ETH_P_IPV6)
        assert frame[14] >> 4 == 6
        # payload length 0, next header 59 (none): nothing after the fixed header
        assert struct.unpack("!HB", frame[18:21]) == (0, 59)
        return
    if kind == "truncated":
        # an IPv4 frame cut inside the Ethernet or IPv4 header
        assert frame[12:14] == struct.pack("!H", P.ETH_P_IP) and 14 <= len(frame) < 34
        assert P.udp_packet().startswith(frame)
        return
    assert frame[12:14] == struct.pack("!H", P.ETH_P_IP) and len(frame) >= 34
    ip = frame[14:34]
    assert struct.unpack("!H", ip[2:4])[0] == len(frame) - 14  # total length: the whole frame
    assert P.checksum(ip) == 0
    proto, src, dst = ip[9], ip[12:16], ip[16:20]
    l4 = frame[34:]
    if proto == P.IPPROTO_ICMP:
        assert P.checksum(l4) == 0
    else:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        assert P.checksum(pseudo + l4) == 0


def test_packet_layout() -> None:
    frame = P.udp_packet(src="1.2.3.4", dst="5.6.7.8", sport=1000, dport=2000, payload=b"x")
    assert len(frame) == 14 + 20 + 8 + 1
    assert frame[12:14] == b"\x08\x00"
    assert frame[26:30] == socket.inet_aton("1.2.3.4")
    assert struct.unpack("!HH", frame[34:38]) == (1000, 2000)


# -- the seam itself -------------------------------------------------------------


def test_kernel_available_is_a_bool() -> None:
    assert isinstance(kernel_available(), bool)


@needs_kernel
@pytest.mark.parametrize(
    ("obj", "programs"),
    [
        ("xdp_counter.o", ["xdp_count"]),
        ("xdp_firewall.o", ["xdp_firewall"]),
        ("xdp_ratelimit.o", ["xdp_ratelimit"]),
        ("xdp_events.o", ["xdp_events"]),
        ("xdp_tailcall.o", ["xdp_dispatch", "xdp_tcp", "xdp_udp", "xdp_icmp"]),
        ("tc_rewrite.o", ["tc_rewrite"]),
    ],
)
def test_example_loads_in_kernel(obj: str, programs: list[str]) -> None:
    with KernelObject(EXAMPLES / obj) as k:
        assert k.program_names() == programs
        assert all(k.program(p) > 0 for p in programs)


@needs_kernel
def test_bad_object_is_a_kernel_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an ELF file")
    with pytest.raises(KernelError) as caught:
        KernelObject(bad)
    assert caught.value.errno > 0


@needs_kernel
def test_missing_names_are_enoent() -> None:
    with KernelObject(EXAMPLES / "xdp_counter.o") as k:
        with pytest.raises(KernelError) as caught:
            k.program("nope")
        assert caught.value.errno == errno.ENOENT
        with pytest.raises(KernelError):
            k.map("nope")


@needs_kernel
def test_map_operations_and_errno() -> None:
    with KernelObject(EXAMPLES / "xdp_counter.o") as k:
        m = k.map("proto_count")
        assert (m.key_size, m.value_size, m.max_entries) == (4, 8, 256)
        assert m.lookup(u32(1)) is None
        m.update(u32(1), u64(5))
        m.update(u32(2), u64(6))
        with pytest.raises(KernelError) as caught:
            m.update(u32(1), u64(7), flags=1)  # BPF_NOEXIST
        assert caught.value.errno == errno.EEXIST
        assert m.lookup(u32(1)) == u64(5)
        assert sorted(m.items()) == [(u32(1), u64(5)), (u32(2), u64(6))]
        m.delete(u32(1))
        with pytest.raises(KernelError) as caught:
            m.delete(u32(1))
        assert caught.value.errno == errno.ENOENT
        assert list(m.keys()) == [u32(2)]


@needs_kernel
def test_counter_counts_protocols_and_drops_blocked_port() -> None:
    packets = P.sample_packets()
    expected = {
        "udp_dns": XDP_DROP,  # UDP to blocked_port 53
        "udp_ttl1": XDP_DROP,
        "udp_other": XDP_PASS,
        "tcp_syn": XDP_PASS,
        "icmp": XDP_PASS,
        "ipv6": XDP_PASS,
        "short_ip": XDP_PASS,
    }
    with KernelObject(EXAMPLES / "xdp_counter.o") as k:
        for name, verdict in expected.items():
            run = k.test_run("xdp_count", packets[name])
            assert run.retval == verdict, name
            assert run.data_out == packets[name]
        counts = {struct.unpack("<I", key)[0]: as_u64(v) for key, v in k.map("proto_count").items()}
        assert counts == {P.IPPROTO_UDP: 3, P.IPPROTO_TCP: 1, P.IPPROTO_ICMP: 1}
        assert k.map(".bss").lookup(u32(0)) == u64(len(expected))  # packets_seen


@needs_kernel
def test_counter_rodata_set_before_load() -> None:
    globals_ = {"blocked_port": struct.pack("<H", 5000)}
    with KernelObject(EXAMPLES / "xdp_counter.o", globals=globals_) as k:
        assert k.test_run("xdp_count", P.udp_packet(dport=53)).retval == XDP_PASS
        assert k.test_run("xdp_count", P.udp_packet(dport=5000)).retval == XDP_DROP


@needs_kernel
def test_firewall_longest_prefix_wins() -> None:
    def prefix(length: int, addr: str) -> bytes:
        return u32(length) + socket.inet_aton(addr)

    with KernelObject(EXAMPLES / "xdp_firewall.o") as k:
        rules = k.map("rules")
        rules.update(prefix(16, "192.168.0.0"), u32(XDP_DROP))
        rules.update(prefix(24, "192.168.1.0"), u32(XDP_PASS))
        cases = [
            (P.tcp_packet(src="192.168.66.1"), XDP_DROP),
            (P.tcp_packet(src="192.168.1.7"), XDP_PASS),
            (P.udp_packet(src="10.0.0.1"), XDP_PASS),
            (P.arp_frame(), XDP_PASS),  # not IPv4: not counted
        ]
        for frame, verdict in cases:
            assert k.test_run("xdp_firewall", frame).retval == verdict
        verdicts = k.map("verdicts")
        assert as_u64(verdicts.lookup(u32(XDP_DROP))) == 1
        assert as_u64(verdicts.lookup(u32(XDP_PASS))) == 2


@needs_kernel
def test_ratelimit_drops_over_limit_per_bucket() -> None:
    with KernelObject(EXAMPLES / "xdp_ratelimit.o", globals={"limit": u64(2)}) as k:
        a, b = P.udp_packet(src="10.0.0.1"), P.udp_packet(src="10.9.9.9")
        verdicts = [k.test_run("xdp_ratelimit", a, cpu=0).retval for _ in range(4)]
        assert verdicts == [XDP_PASS, XDP_PASS, XDP_DROP, XDP_DROP]
        assert k.test_run("xdp_ratelimit", b, cpu=0).retval == XDP_PASS
        totals = k.map("totals")
        passed, dropped = totals.lookup(u32(0)), totals.lookup(u32(1))
        # per-CPU: one value per possible CPU; every run was on CPU 0
        assert [as_u64(v) for v in passed] == [3] + [0] * (len(passed) - 1)
        assert sum(as_u64(v) for v in dropped) == 2
        bucket = (struct.unpack("!I", socket.inet_aton("10.0.0.1"))[0] * 2654435761 % 2**32) >> 26
        assert as_u64(k.map("buckets").lookup(u32(bucket))[0]) == 4


@needs_kernel
def test_events_ringbuf_records() -> None:
    packets = [
        P.udp_packet(src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=53),
        P.tcp_packet(src="192.168.1.7", sport=1234, dport=80),
        P.icmp_packet(src="172.16.0.9"),
        P.arp_frame(),  # reserved then discarded: no record for a consumer
    ]
    with KernelObject(EXAMPLES / "xdp_events.o") as k:
        for frame in packets:
            assert k.test_run("xdp_events", frame).retval == XDP_PASS
        records = k.map("events").consume()
        assert k.map("events").consume() == []
    assert len(records) == 3
    flow = struct.Struct("<4s4sHHBBH")
    assert flow.unpack(records[0]) == (
        socket.inet_aton("10.0.0.1"),
        socket.inet_aton("10.0.0.2"),
        40000,
        53,
        P.IPPROTO_UDP,
        1,
        len(packets[0]),
    )
    assert flow.unpack(records[1])[2:6] == (1234, 80, P.IPPROTO_TCP, 1)
    assert struct.unpack("<BBH4s", records[2]) == (
        2,
        P.IPPROTO_ICMP,
        len(packets[2]),
        socket.inet_aton("172.16.0.9"),
    )


@needs_kernel
def test_tailcall_dispatch_and_fall_through() -> None:
    with KernelObject(EXAMPLES / "xdp_tailcall.o") as k:
        k.set_prog_array("dispatch", P.IPPROTO_UDP, "xdp_udp")
        k.set_prog_array("dispatch", P.IPPROTO_ICMP, "xdp_icmp")
        assert k.test_run("xdp_dispatch", P.udp_packet()).retval == XDP_PASS
        assert k.test_run("xdp_dispatch", P.icmp_packet()).retval == XDP_DROP
        assert k.test_run("xdp_dispatch", P.tcp_packet()).retval == XDP_PASS  # empty slot
        assert k.test_run("xdp_dispatch", P.arp_frame()).retval == XDP_PASS
        hits = [as_u64(k.map("hits").lookup(u32(i))) for i in range(5)]
        assert hits == [1, 1, 0, 1, 1]  # not-ip, miss, tcp, udp, icmp


@needs_kernel
def test_tc_rewrite_fixes_checksums() -> None:
    with KernelObject(EXAMPLES / "tc_rewrite.o") as k:
        frame = P.udp_packet(dport=53, ttl=64)
        run = k.test_run("tc_rewrite", frame)
        assert run.retval == TC_ACT_OK
        out = run.data_out
        assert out[14 + 8] == 63  # TTL
        assert P.checksum(out[14:34]) == 0
        assert struct.unpack("!H", out[36:38])[0] == 5353
        l4 = out[34:]
        pseudo = out[26:34] + struct.pack("!BBH", 0, P.IPPROTO_UDP, len(l4))
        assert P.checksum(pseudo + l4) == 0
        assert out == P.udp_packet(dport=5353, ttl=63)

        tcp = k.test_run("tc_rewrite", P.tcp_packet(ttl=9)).data_out
        assert tcp == P.tcp_packet(ttl=8)
        assert k.test_run("tc_rewrite", P.udp_packet(ttl=1)).retval == TC_ACT_SHOT
        assert k.map(".bss").lookup(u32(0)) == u64(1)  # rewritten
        with pytest.raises(KernelError) as caught:  # skb test runs need a full IP header
            k.test_run("tc_rewrite", P.udp_packet()[:30])
        assert caught.value.errno == errno.EINVAL
