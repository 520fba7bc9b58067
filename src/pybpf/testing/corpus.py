"""The program corpus (tests/corpus): inputs, the kernel's answers, and pybpf's.

Each `Case` names one program of a corpus object, the inputs it runs on
(packets, `__sk_buff` contexts, raw-tracepoint arguments, kprobe registers),
the global variables set before load and the map entries written before
the runs. `record()` loads every case into the running kernel through
libbpf (`KernelObject`), runs the inputs with `bpf_prog_test_run_opts`, and
writes `tests/corpus/manifest.json`: per case the inputs (hex) and the
kernel's answers — load verdict (with the verifier's reason line when
rejected), each run's retval, data_out and ctx_out, then every map and
global-data section after the runs and the records in each ring buffer.

Programs Linux cannot test-run (kprobe, tracepoint) are still loaded into
the kernel for its verdict; their results are pybpf-only expectations
written here from the C source (`expected`), and the manifest says so
(`results_from: "source"`).

`run_pybpf(entry, engine)` does the same with pybpf and returns the same
shape, so tests/test_corpus.py compares the two field by field.

Map contents are normalised on both sides: entries sorted by key, keys and
values as hex, array entries whose value is all zeros left out, per-CPU
values as CPU 0's value (the kernel's runs are pinned to CPU 0, where
pybpf's runs count). Program-array and map-of-maps slots hold fds or ids,
so they are not compared; their inner maps are, by name. `.kconfig` is
left out (its values are the host's; the programs copy what they use into
`.bss`).

`python -m pybpf.testing.corpus` re-records the manifest on this machine
(root, libbpf, bpf()) and prints one line per case.
"""

from __future__ import annotations

import json
import platform
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .packets import checksum

#: The corpus in a source checkout: src/pybpf/testing → tests/corpus.
CORPUS_DIR = Path(__file__).resolve().parents[3] / "tests" / "corpus"
MANIFEST = CORPUS_DIR / "manifest.json"

# Map types whose values are not data: prog arrays, maps of maps, perf
# event arrays, ring buffers (read as records instead).
_SKIP_TYPES = {3, 4, 12, 13, 27}
_ARRAY_TYPES = {2, 6}  # array, percpu_array: all-zero entries are left out
_RINGBUF = 27

# -- packet builders ----------------------------------------------------------

MAC_A = bytes.fromhex("02aabbccdd01")
MAC_B = bytes.fromhex("02aabbccdd02")


def _ip4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def _ip6(addr: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(addr).packed


def eth(ethertype: int, payload: bytes, dst: bytes = MAC_B, src: bytes = MAC_A) -> bytes:
    """An Ethernet II frame, padded to the 60-byte minimum."""
    return (dst + src + struct.pack("!H", ethertype) + payload).ljust(60, b"\0")


def vlan(vid: int, ethertype: int, payload: bytes, tpid: int = 0x8100) -> tuple[int, bytes]:
    """(TPID, tag + payload): pass to `eth` as its type and payload."""
    return tpid, struct.pack("!HH", vid, ethertype) + payload


def ipv4(
    proto: int,
    payload: bytes,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    *,
    tos: int = 0,
    ttl: int = 64,
    options: bytes = b"",
    frag: int = 0,
) -> bytes:
    """An IPv4 header (options padded to 4 bytes) with a valid checksum, then `payload`."""
    options = options.ljust((len(options) + 3) // 4 * 4, b"\0")
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, tos, total, 0x1234, frag, ttl, proto, 0, _ip4(src), _ip4(dst)
    )
    hdr += options
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def _pseudo4(src: str, dst: str, proto: int, length: int) -> bytes:
    return _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp(
    sport: int, dport: int, payload: bytes = b"", src: str = "10.0.0.1", dst: str = "10.0.0.2"
) -> bytes:
    """A UDP header with a valid checksum (over the IPv4 pseudo header), then `payload`."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(_pseudo4(src, dst, 17, length) + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp(
    sport: int,
    dport: int,
    flags: int = 0x02,
    options: bytes = b"",
    payload: bytes = b"",
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
) -> bytes:
    """A TCP header (options padded with EOL to 4 bytes) with a valid checksum."""
    options = options.ljust((len(options) + 3) // 4 * 4, b"\0")
    doff = 5 + len(options) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, doff << 4, flags, 65535, 0, 0)
    hdr += options
    csum = checksum(_pseudo4(src, dst, 6, len(hdr) + len(payload)) + hdr + payload)
    return hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload


def icmp_echo(ident: int = 7, seq: int = 1, payload: bytes = b"pybpf-ping") -> bytes:
    """An ICMP echo request with a valid checksum."""
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = checksum(hdr + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def ipv6(nexthdr: int, payload: bytes, src: str = "2001:db8::1", dst: str = "2001:db8::2") -> bytes:
    """An IPv6 header (hop limit 64), then `payload`."""
    return (
        struct.pack("!IHBB", 0x60000000, len(payload), nexthdr, 64)
        + _ip6(src)
        + _ip6(dst)
        + payload
    )


def ext6(nexthdr: int, units: int = 0, fill: int = 0) -> bytes:
    """An IPv6 extension header of (units + 1) * 8 bytes (hop-by-hop, routing, dst opts)."""
    return struct.pack("!BB", nexthdr, units) + bytes([fill]) * (6 + units * 8)


def frag6(nexthdr: int) -> bytes:
    """An IPv6 fragment header."""
    return struct.pack("!BBHI", nexthdr, 0, 1, 0xABCD)


def dns_query(name: str, ident: int = 0x4242) -> bytes:
    """A DNS query header and QNAME (type A, class IN)."""
    out = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + struct.pack("!HH", 1, 1)


def fnv1a(data: bytes) -> int:
    """32-bit FNV-1a, as xdp_dns_qname hashes a name's label bytes."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def skb_ctx(**fields: int) -> bytes:
    """A `struct __sk_buff` (192 bytes) with the given fields set (mark, priority, cb0..cb4)."""
    offsets = {"mark": 8, "priority": 32, "ifindex": 40}
    buf = bytearray(192)
    for name, value in fields.items():
        off = 48 + 4 * int(name[2:]) if name.startswith("cb") else offsets[name]
        buf[off : off + 4] = struct.pack("<I", value)
    return bytes(buf)


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def be32(addr: str) -> bytes:
    return _ip4(addr)


# -- the cases ----------------------------------------------------------------


@dataclass
class Run:
    """One test run's input."""

    data: bytes = b""
    ctx: bytes | None = None
    args: list[int] | None = None
    regs: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data.hex()}
        if self.ctx is not None:
            out["ctx"] = self.ctx.hex()
        if self.args is not None:
            out["args"] = list(self.args)
        if self.regs is not None:
            out["regs"] = dict(self.regs)
        return out


@dataclass
class Case:
    """One program of the corpus with its inputs (see the module docstring)."""

    name: str
    program: str
    prog_type: str
    runs: list[Run]
    description: str
    object: str = ""
    globals: dict[str, bytes] = field(default_factory=dict)
    setup: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    autoload: dict[str, bool] = field(default_factory=dict)
    #: pybpf-only expectations (types Linux cannot test-run), from the C source:
    #: {"retvals": [...], "maps": {name: [[k, v], ...]}, "variables": {section: {var: hex}}}
    expected: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.object:
            self.object = self.name + ".o"


def _pkt_cases() -> list[Case]:
    v4 = lambda proto, payload, **kw: eth(0x0800, ipv4(proto, payload, **kw))  # noqa: E731
    udp_frame = lambda sport, dport, payload=b"", **kw: v4(17, udp(sport, dport, payload), **kw)  # noqa: E731
    tcp_frame = lambda dport, ttl=64, **kw: v4(6, tcp(40000, dport, **kw), ttl=ttl)  # noqa: E731
    icmp_frame = v4(1, icmp_echo())
    arp = eth(0x0806, bytes(28))
    v6_udp = eth(0x86DD, ipv6(17, struct.pack("!HHHH", 1, 2, 8, 0)))
    mss_opts = lambda mss: b"\x01\x01" + struct.pack("!BBH", 2, 4, mss) + b"\x04\x02"  # noqa: E731

    return [
        Case(
            "globals_mixed",
            "globals_mixed",
            "xdp",
            [Run(udp_frame(1, 53)), Run(bytes(61)), Run(tcp_frame(80, payload=bytes(1500)))],
            "globals of every section kind (.rodata/.data/.bss, custom sections); existing",
            globals={"cfg_mult": u32(5)},
        ),
        Case(
            "autoload_mixed",
            "good",
            "xdp",
            [Run(bytes(60)), Run(bytes(60)), Run(bytes(100))],
            "three programs, one the kernel rejects with autoload off; existing",
            autoload={"unchecked": False},
        ),
        Case(
            "perf_events",
            "report",
            "xdp",
            [Run(udp_frame(1, 2)), Run(bytes(13)), Run(arp)],
            "perf event output with no reader; existing (records not compared)",
        ),
        Case(
            "kconfig_externs",
            "read_kconfig",
            "xdp",
            [Run(bytes(60))],
            "__kconfig externs copied into .bss; existing",
        ),
        Case(
            "kconfig_strong",
            "strong_kconfig",
            "xdp",
            [Run(bytes(60))],
            "a strong __kconfig extern the kernel lacks: the object fails to load; existing",
        ),
        Case(
            "ksym_externs",
            "weak_ksym",
            "xdp",
            [Run(bytes(60))],
            "typeless __ksym externs (weak and strong); existing",
            autoload={"strong_ksym": False},
        ),
        Case(
            "xdp_fw_v4",
            "xdp_fw_v4",
            "xdp",
            [
                Run(tcp_frame(22)),
                Run(tcp_frame(443)),
                Run(udp_frame(5000, 53)),
                Run(icmp_frame),
                Run(arp),
                Run(bytes(20)),
            ],
            "IPv4 port firewall: hash of blocked ports, per-CPU protocol counts, const volatile",
            setup={"blocked_ports": [(u16(22), b"\1"), (u16(53), b"\1")]},
            globals={"drop_action": u32(1)},
        ),
        Case(
            "xdp_v6_exthdr",
            "xdp_v6_exthdr",
            "xdp",
            [
                Run(eth(0x86DD, ipv6(0, ext6(60, 0) + ext6(43, 1) + ext6(6, 0) + tcp(1, 2)))),
                Run(eth(0x86DD, ipv6(44, frag6(17) + udp(1, 2)))),
                Run(eth(0x86DD, ipv6(17, udp(1, 2)))),
                Run(eth(0x86DD, ipv6(0, ext6(0, 0) + ext6(0, 0) + ext6(0, 0))[:70])),
                Run(icmp_frame),
            ],
            "IPv6 extension-header walk in a bounded loop",
        ),
        Case(
            "xdp_tcp_mss",
            "xdp_tcp_mss",
            "xdp",
            [
                Run(tcp_frame(80, options=mss_opts(1460))),
                Run(tcp_frame(80, options=mss_opts(1200))),
                Run(tcp_frame(80, flags=0x10, options=mss_opts(1460))),
                Run(tcp_frame(80, options=b"\x01" * 7 + b"\x03\x03\x07" + mss_opts(9000))),
            ],
            "TCP options walk; MSS clamp with incremental checksum",
        ),
        Case(
            "xdp_vlan_count",
            "xdp_vlan_count",
            "xdp",
            [
                Run(eth(*vlan(10, 0x0800, ipv4(17, udp(1, 2))))),
                Run(eth(*vlan(20, 0x8100, struct.pack("!HH", 30, 0x86DD) + bytes(40), 0x88A8))),
                Run(eth(*vlan(666, 0x0800, bytes(40)))),
                Run(eth(*vlan(10, 0x0806, bytes(28)))),
                Run(icmp_frame),
            ],
            "802.1Q/802.1ad parsing, per-VLAN hash counts",
        ),
        Case(
            "xdp_vlan_pop",
            "xdp_vlan_pop",
            "xdp",
            [
                Run(eth(*vlan(0x2064, 0x0800, ipv4(17, udp(1, 2))))),
                Run(icmp_frame),
                Run(eth(*vlan(5, 0x86DD, bytes(40)))),
            ],
            "VLAN pop with bpf_xdp_adjust_head",
        ),
        Case(
            "xdp_icmp_reply",
            "xdp_icmp_reply",
            "xdp",
            [Run(icmp_frame), Run(v4(1, icmp_echo(9, 77), ttl=3)), Run(udp_frame(1, 2))],
            "ICMP echo responder: address swaps, checksums via bpf_csum_diff, XDP_TX",
        ),
        Case(
            "xdp_lru_ratelimit",
            "xdp_lru_ratelimit",
            "xdp",
            [
                Run(udp_frame(1, 2, src="10.1.1.1")),
                Run(udp_frame(1, 2, src="10.1.1.1")),
                Run(udp_frame(1, 2, src="10.1.1.2")),
                Run(udp_frame(1, 2, b"x" * 100, src="10.1.1.1")),
                Run(udp_frame(1, 2, src="10.1.1.1")),
            ],
            "LRU hash per-source budget, .data counters",
        ),
        Case(
            "xdp_lpm_route",
            "xdp_lpm_route",
            "xdp",
            [
                Run(udp_frame(1, 2, dst="192.168.1.7")),
                Run(udp_frame(1, 2, dst="192.168.7.7")),
                Run(udp_frame(1, 2, dst="8.8.8.8")),
                Run(udp_frame(1, 2, dst="192.168.1.200")),
            ],
            "LPM trie lookup of the destination",
            setup={
                "routes": [
                    (u32(16) + be32("192.168.0.0"), u32(3) + u32(0)),
                    (u32(24) + be32("192.168.1.0"), u32(1) + u32(0)),
                    (u32(25) + be32("192.168.1.128"), u32(2) + u32(100)),
                ]
            },
            globals={"default_action": u32(0)},
        ),
        Case(
            "xdp_ringbuf_flows",
            "xdp_ringbuf_flows",
            "xdp",
            [Run(udp_frame(1, 2)), Run(arp), Run(tcp_frame(80, ttl=9)), Run(bytes(10))],
            "ring buffer records: reserve, field writes, submit / discard",
        ),
        Case(
            "xdp_map_in_map",
            "xdp_map_in_map",
            "xdp",
            [
                Run(udp_frame(1, 2)),
                Run(v4(6, tcp(1, 2), tos=0x80)),
                Run(v4(1, icmp_echo(), tos=0xB8)),
                Run(udp_frame(1, 2, tos=0x10)),
            ],
            "array of maps with BTF-declared inner arrays, slots filled by .values",
        ),
        Case(
            "xdp_hash_of_maps",
            "xdp_hash_of_maps",
            "xdp",
            [
                Run(udp_frame(1, 53)),
                Run(udp_frame(1, 53)),
                Run(v4(6, tcp(1, 443))),
                Run(v4(1, icmp_echo())),
            ],
            "hash of maps with BTF-declared inner hashes, slots filled by .values",
        ),
        Case(
            "xdp_bpf_loop_sum",
            "xdp_bpf_loop_sum",
            "xdp",
            [
                Run(bytes(range(1, 61))),
                Run(bytes([3, 4, 5, 0xFF]) + bytes(60)),
                Run(bytes([7]) * 100),
            ],
            "bpf_loop callback reading bytes with bpf_xdp_load_bytes",
            globals={"max_bytes": u32(40)},
        ),
        Case(
            "xdp_subprog_parse",
            "xdp_subprog_parse",
            "xdp",
            [Run(udp_frame(1111, 2222)), Run(tcp_frame(80)), Run(arp), Run(bytes(8))],
            "bpf-to-bpf calls taking packet pointers",
        ),
        Case(
            "xdp_tailcall_proto",
            "xdp_dispatch",
            "xdp",
            [Run(tcp_frame(80)), Run(udp_frame(1, 2)), Run(icmp_frame), Run(arp)],
            "tail calls through a prog array filled by .values",
        ),
        Case(
            "xdp_fib_forward",
            "xdp_fib_forward",
            "xdp",
            [Run(udp_frame(1, 2, dst="203.0.113.9")), Run(udp_frame(1, 2, ttl=1)), Run(arp)],
            "bpf_fib_lookup on the test run's empty tables",
        ),
        Case(
            "xdp_spin_stats",
            "xdp_spin_stats",
            "xdp",
            [Run(udp_frame(1, 2)), Run(arp), Run(udp_frame(1, 2, bytes(200))), Run(v6_udp)],
            "hash values with a bpf_spin_lock",
        ),
        Case(
            "xdp_trim_tail",
            "xdp_trim_tail",
            "xdp",
            [Run(bytes(range(100))), Run(bytes(61)), Run(bytes(60))],
            "bpf_xdp_adjust_tail shrink and grow",
        ),
        Case(
            "xdp_meta_mark",
            "xdp_meta_mark",
            "xdp",
            [Run(udp_frame(1, 2))],
            "bpf_xdp_adjust_meta and a metadata write",
        ),
        Case(
            "xdp_dnat_csum",
            "xdp_dnat_csum",
            "xdp",
            [
                Run(v4(17, udp(4000, 53, b"query", dst="10.0.0.10"), dst="10.0.0.10")),
                Run(v4(17, udp(4000, 54, b"query", dst="10.0.0.10"), dst="10.0.0.10")),
                Run(udp_frame(4000, 53)),
            ],
            "UDP DNAT with bpf_csum_diff checksum updates",
        ),
        Case(
            "xdp_dns_qname",
            "xdp_dns_qname",
            "xdp",
            [
                Run(udp_frame(5000, 53, dns_query("www.example.com"))),
                Run(udp_frame(5000, 53, dns_query("blocked.test", 7))),
                Run(udp_frame(5000, 53, dns_query("a" * 70))),
                Run(udp_frame(5000, 80, dns_query("x.y"))),
            ],
            "DNS QNAME label walk (variable length, bounded loop)",
            setup={"blocked_names": [(u32(fnv1a(b"blockedtest")), u32(0))]},
        ),
        Case(
            "xdp_ipv4_options",
            "xdp_ipv4_options",
            "xdp",
            [
                Run(v4(17, udp(7, 9), options=b"\x94\x04\x00\x00")),
                Run(v4(17, udp(7, 9), options=b"\x01\x01\x07\x07\x04\x00\x00\x00\x00")),
                Run(udp_frame(1234, 4321)),
                Run(v4(6, tcp(1, 2), options=b"\x01\x00")),
            ],
            "IPv4 options walk and a variable-length header",
        ),
        Case(
            "xdp_percpu_ethertype",
            "xdp_percpu_ethertype",
            "xdp",
            [Run(udp_frame(1, 2)), Run(arp), Run(udp_frame(1, 2, bytes(300))), Run(v6_udp)],
            "per-CPU hash and per-CPU array",
        ),
        Case(
            "xdp_core_parse",
            "xdp_core_parse",
            "xdp",
            [Run(tcp_frame(22)), Run(tcp_frame(80, flags=0x12)), Run(tcp_frame(443)), Run(arp)],
            "vmlinux.h CO-RE: ethhdr/iphdr/tcphdr (bitfields, anonymous unions)",
        ),
        Case(
            "xdp_core_ipv6",
            "xdp_core_ipv6",
            "xdp",
            [
                Run(eth(0x86DD, ipv6(0, ext6(43, 1) + ext6(17) + udp(1, 2), src="fe80::1:2:3:4"))),
                Run(v6_udp),
                Run(icmp_frame),
            ],
            "vmlinux.h CO-RE: ipv6hdr, in6_addr, field/type existence relocations",
        ),
        Case(
            "tc_dscp_mark",
            "tc_dscp_mark",
            "tc",
            [
                Run(udp_frame(1, 5060, b"voice")),
                Run(udp_frame(1, 80)),
                Run(udp_frame(1, 5060, tos=0xB9)),
                Run(arp),
            ],
            "tc DSCP re-marking: bpf_l3_csum_replace, bpf_skb_store_bytes, mark/priority",
        ),
        Case(
            "tc_udp_port_nat",
            "tc_udp_port_nat",
            "tc",
            [
                Run(udp_frame(1000, 8080, b"hello")),
                Run(udp_frame(1000, 8080, b"again")),
                Run(udp_frame(2000, 8081)),
                Run(udp_frame(3000, 8080)),
            ],
            "tc port rewrite: bpf_l4_csum_replace + bpf_skb_store_bytes",
        ),
        Case(
            "tc_vlan_helpers",
            "tc_vlan_helpers",
            "tc",
            [Run(udp_frame(1, 2)), Run(eth(*vlan(42, 0x0800, ipv4(17, udp(1, 2)))))],
            "bpf_skb_vlan_push / bpf_skb_vlan_pop (vmlinux.h CO-RE __sk_buff)",
        ),
        Case(
            "tc_adjust_room",
            "tc_adjust_room",
            "tc",
            [Run(udp_frame(1, 2, b"payload")), Run(v4(253, bytes(8) + b"inner")), Run(arp)],
            "bpf_skb_adjust_room (BPF_ADJ_ROOM_NET) grow and shrink",
        ),
        Case(
            "tc_core_skb",
            "tc_core_skb",
            "tc",
            [
                Run(udp_frame(1, 2), ctx=skb_ctx(mark=0x1234, cb0=3)),
                Run(eth(0x86DD, bytes(60), dst=b"\xff" * 6), ctx=skb_ctx(cb0=11, priority=5)),
                Run(udp_frame(1, 2, bytes(5), dst="10.9.9.9")),
            ],
            "vmlinux.h CO-RE __sk_buff reads and writes, field existence/size",
        ),
        Case(
            "tc_load_bytes",
            "tc_load_bytes",
            "tc",
            [
                Run(udp_frame(1, 2)),
                Run(udp_frame(1, 2)),
                Run(v4(6, tcp(3, 4), options=b"\x01\x01\x01\x01")),
                Run(arp),
            ],
            "bpf_skb_load_bytes at IHL-dependent offsets, 5-tuple hash",
        ),
        Case(
            "tc_redirect_mark",
            "tc_redirect_mark",
            "tc",
            [
                Run(udp_frame(1, 2), ctx=skb_ctx(mark=3)),
                Run(udp_frame(1, 2), ctx=skb_ctx(mark=5)),
                Run(udp_frame(1, 2)),
            ],
            "bpf_redirect by mark, bpf_skb_pull_data",
            setup={"steer": [(u32(3), u32(1))]},
        ),
        Case(
            "cgskb_egress_fw",
            "cgskb_egress_fw",
            "cgroup/skb",
            [
                Run(udp_frame(1, 2, dst="10.0.0.99")),
                Run(udp_frame(1, 2, bytes(33))),
                Run(v4(6, tcp(1, 2))),
                Run(v6_udp),
            ],
            "cgroup_skb egress firewall from the network header",
            setup={"denied": [(be32("10.0.0.99"), u32(0))]},
        ),
        Case(
            "cgskb_ingress_core",
            "cgskb_ingress_core",
            "cgroup/skb",
            [
                Run(udp_frame(1, 2, ttl=17)),
                Run(eth(0x86DD, ipv6(17, udp(1, 2), src="2001:db8::5", dst="fd00::1234"))),
                Run(eth(0x86DD, ipv6(17, udp(1, 2), src="2001:db9::5", dst="fd00::9"))),
            ],
            "cgroup_skb ingress with vmlinux.h CO-RE __sk_buff and headers",
        ),
        Case(
            "sockfilter_ldabs",
            "sockfilter_ldabs",
            "socket",
            [
                Run(udp_frame(1, 53)),
                Run(udp_frame(1, 53, src="127.0.0.1")),
                Run(udp_frame(1, 54)),
                Run(v4(17, udp(1, 53), options=b"\x01\x01\x01\x01")),
                Run(v4(6, tcp(1, 53))),
            ],
            "socket filter with LD_ABS/LD_IND builtins",
        ),
        Case(
            "sockfilter_counts",
            "sockfilter_counts",
            "socket",
            [
                Run(tcp_frame(80)),
                Run(tcp_frame(80, flags=0x12)),
                Run(udp_frame(1, 2)),
                Run(tcp_frame(1)),
            ],
            "socket filter with bpf_skb_load_bytes and map counts",
        ),
    ]


def _tracing_cases() -> list[Case]:
    regs = lambda di, si, dx, ip: {"di": di & (2**64 - 1), "si": si, "dx": dx, "ip": ip}  # noqa: E731
    return [
        Case(
            "rawtp_sys_enter",
            "rawtp_sys_enter",
            "raw_tracepoint",
            [Run(args=[0, 59]), Run(args=[0, 1]), Run(args=[0, 59]), Run(args=[0, 0])],
            "raw tracepoint arguments, hash counts",
        ),
        Case(
            "rawtp_ringbuf",
            "rawtp_ringbuf",
            "raw_tracepoint",
            [Run(args=[5, 6, 7]), Run(args=[0, 1, 2]), Run(args=[9, 0, 0xFFFFFFFFFFFFFFFF])],
            "raw tracepoint writing ring buffer records (reserve and output)",
        ),
        Case(
            "kprobe_openat",
            "kprobe_openat",
            "kprobe",
            [
                Run(regs=regs(-100, 0x7000, 0x241, 0xFFFFFFFF81234560)),
                Run(regs=regs(5, 0x7100, 0x241, 0xFFFFFFFF81234561)),
                Run(regs=regs(7, 0x7200, 0, 0xFFFFFFFF81234562)),
            ],
            "BPF_KPROBE with CO-RE pt_regs",
            expected={
                "retvals": [0, 0, 0],
                "maps": {
                    "by_flags": [[u64(0).hex(), u64(1).hex()], [u64(0x241).hex(), u64(2).hex()]]
                },
                "variables": {
                    ".bss": {
                        "last_dfd": u64(7).hex(),
                        "last_ip": u64(0xFFFFFFFF81234562).hex(),
                        "calls": u32(3).hex(),
                    }
                },
            },
        ),
        Case(
            "kretprobe_hist",
            "kretprobe_hist",
            "kprobe",
            [Run(regs={"ax": v & (2**64 - 1)}) for v in (0, 1, 4096, -2, -2, 100)],
            "BPF_KRETPROBE log2 histogram and errno counts",
            expected={
                "retvals": [0] * 6,
                "maps": {
                    "log2_hist": [
                        [u32(0).hex(), u64(2).hex()],
                        [u32(6).hex(), u64(1).hex()],
                        [u32(12).hex(), u64(1).hex()],
                    ],
                    "errors": [[u32(2).hex(), u32(2).hex()]],
                },
                "variables": {},
            },
        ),
        Case(
            "tp_sys_enter_write",
            "tp_sys_enter_write",
            "tracepoint",
            [
                Run(args=[0, 1, 1, 0x5000, 10]),
                Run(args=[0, 1, 3, 0x5000, 5000]),
                Run(args=[0, 1, 1, 0x5000, 20]),
            ],
            "tracepoint record as trace_event_raw_sys_enter (CO-RE)",
            expected={
                "retvals": [0, 0, 0],
                "maps": {
                    "bytes_by_fd": [[u32(1).hex(), u64(30).hex()], [u32(3).hex(), u64(5000).hex()]]
                },
                "variables": {
                    ".bss": {
                        "console_writes": u32(2).hex(),
                        "big_writes": u32(1).hex(),
                        "last_id": u64(1).hex(),
                    }
                },
            },
        ),
    ]


def cases() -> list[Case]:
    """Every case of the corpus, in manifest order."""
    return _pkt_cases() + _tracing_cases()


def _kernel_runnable(prog_type: str) -> bool:
    """Whether Linux can test-run a case's type (bpftool's name: `tc`, `cgroup/skb`, …)."""
    from ..platform.program_type_info import program_type_info
    from ..platform.sections import program_type_by_name

    found = program_type_by_name(prog_type)
    return found is not None and program_type_info(found).linux_test_run


# -- shared helpers -----------------------------------------------------------


def symbols(path: Path) -> dict[str, tuple[str, int, int]]:
    """Global variables of an object by name: (section, offset, size), from the symbol table."""
    from elftools.elf.elffile import ELFFile

    out = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            if sym["st_info"]["type"] == "STT_OBJECT" and isinstance(sym["st_shndx"], int):
                section = elf.get_section(sym["st_shndx"]).name
                out[sym.name] = (section, sym["st_value"], sym["st_size"])
    return out


def _dump(items: list[tuple[bytes, Any]], map_type: int) -> list[list[str]]:
    rows = []
    for key, value in items:
        if isinstance(value, list):
            value = value[0]  # per-CPU: CPU 0's value
        if map_type in _ARRAY_TYPES and not any(value):
            continue
        rows.append([bytes(key).hex(), bytes(value).hex()])
    return sorted(rows)


def _elf_map_name(kernel_name: str) -> str:
    # libbpf's "<prefix>.bss" → ".bss"; BTF map names are the ELF names
    dot = kernel_name.find(".")
    return kernel_name[dot:] if dot >= 0 else kernel_name


def _skipped_map(name: str) -> bool:
    return name.endswith(".kconfig") or ".rodata.str" in name or ".rodata.cst" in name


def _args_ctx(args: list[int]) -> bytes:
    return b"".join(u64(a) for a in args)


# -- the kernel ---------------------------------------------------------------


def record_case(case: Case) -> dict[str, Any]:
    """Load `case` into the kernel and run it: the manifest's `kernel` record."""
    from .kernel import KernelError, KernelObject
    from .verdicts import kernel_verdict

    path = CORPUS_DIR / case.object
    out: dict[str, Any] = {"release": platform.release()}
    try:
        k = KernelObject(path, globals=case.globals, autoload=case.autoload)
    except KernelError:
        try:
            _, reason = kernel_verdict(path, case.program)
        except KernelError as exc:
            reason = str(exc)
        out.update(verdict="reject", reason=reason or "libbpf refused the object")
        return out
    with k:
        out.update(verdict="accept", reason="")
        if not _kernel_runnable(case.prog_type):
            out["runs"] = None
            out["note"] = (
                f"Linux cannot test-run {case.prog_type} programs: loaded for the verdict only"
            )
            return out
        for name, entries in case.setup.items():
            m = k.map(name)
            for key, value in entries:
                m.update(key, value)
        runs = []
        for run in case.runs:
            if case.prog_type == "raw_tracepoint":
                res = k.test_run(
                    case.program,
                    b"",
                    _args_ctx(run.args or []),
                    repeat=0,
                    data_out_size=0,
                    ctx_out_size=0,
                )
                runs.append({"retval": res.retval, "data_out": "", "ctx_out": None})
            else:
                try:
                    res = k.test_run(case.program, run.data, run.ctx)
                except KernelError as exc:
                    runs.append({"errno": exc.errno})
                    continue
                runs.append(_run_record(res))
        out["runs"] = runs
        maps: dict[str, Any] = {}
        ringbufs: dict[str, list[str]] = {}
        for kname in k.map_names():
            if _skipped_map(kname):
                continue
            m = k.map(kname)
            name = _elf_map_name(kname)
            if m.type == _RINGBUF:
                ringbufs[name] = [r.hex() for r in m.consume()]
            elif m.type not in _SKIP_TYPES:
                maps[name] = _dump(m.items(), m.type)
        out["maps"] = maps
        out["ringbufs"] = ringbufs
    return out


def record(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Record every case in this kernel and write the manifest."""
    entries = []
    for case in cases():
        entry: dict[str, Any] = {
            "name": case.name,
            "object": case.object,
            "program": case.program,
            "prog_type": case.prog_type,
            "description": case.description,
            "globals": {k: v.hex() for k, v in case.globals.items()},
            "autoload": case.autoload,
            "setup": {k: [[a.hex(), b.hex()] for a, b in v] for k, v in case.setup.items()},
            "inputs": [run.to_json() for run in case.runs],
            "kernel": record_case(case),
        }
        if case.expected is not None:
            entry["results_from"] = "source"
            entry["expected"] = case.expected
        else:
            entry["results_from"] = "kernel"
        entries.append(entry)
    doc = {
        "description": (
            "Our own programs in today's libbpf style (tests/corpus/*.c) with the inputs they "
            "run on and what the Linux kernel answered: load verdict (reason: the verifier's "
            "line), per run retval / data_out / ctx_out (hex), then every map after the runs "
            "(sorted [key, value] hex; array entries that are all zeros left out; per-CPU maps "
            "as CPU 0's value) and ring buffer records. results_from 'source': Linux cannot "
            "test-run the type, so 'expected' holds pybpf-only results derived from the C "
            "source. Re-record with: python -m pybpf.testing.corpus"
        ),
        "programs": entries,
    }
    Path(path or MANIFEST).write_text(json.dumps(doc, indent=1) + "\n")
    return entries


# -- pybpf --------------------------------------------------------------------


def load_manifest(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The manifest's entries."""
    return json.loads(Path(path or MANIFEST).read_text())["programs"]


def _run_record(res: Any) -> dict[str, Any]:
    """One run's answer as the manifest stores it (a kernel or a pybpf test run)."""
    return {
        "retval": res.retval,
        "data_out": res.data_out.hex(),
        "ctx_out": None if res.ctx_out is None else res.ctx_out.hex(),
    }


def run_pybpf(entry: dict[str, Any], engine: str) -> dict[str, Any]:
    """Load and run a manifest entry with pybpf: the same shape as its `kernel` record.

    A load, verification or relocation failure is verdict "reject" with the
    error as the reason; a failure during the runs propagates.
    """
    import pybpf
    from pybpf.errors import PybpfError, TestRunError

    path = CORPUS_DIR / entry["object"]
    out: dict[str, Any] = {}
    try:
        obj = pybpf.load(path, engine=engine)
    except PybpfError as exc:
        return {"verdict": "reject", "reason": str(exc).splitlines()[0]}
    with obj:
        try:
            for name, on in entry["autoload"].items():
                obj.programs[name].autoload = on
            syms = symbols(path)
            for var, value in entry["globals"].items():
                section, offset, size = syms[var]
                m = obj.maps[section]
                raw = bytearray(m.lookup(b"\0\0\0\0"))
                raw[offset : offset + size] = bytes.fromhex(value)
                m.update(b"\0\0\0\0", bytes(raw))
            obj.load()
        except PybpfError as exc:
            return {"verdict": "reject", "reason": str(exc).splitlines()[0]}
        out.update(verdict="accept", reason="")
        for name, rows in entry["setup"].items():
            m = obj.maps[name]
            for key, value in rows:
                m.update(bytes.fromhex(key), bytes.fromhex(value))
        prog = obj.programs[entry["program"]]
        runs = []
        for run in entry["inputs"]:
            ctx = bytes.fromhex(run["ctx"]) if "ctx" in run else None
            try:
                res = prog.test_run(
                    data=bytes.fromhex(run["data"]),
                    ctx=ctx,
                    args=run.get("args"),
                    regs=run.get("regs"),
                )
            except TestRunError as exc:
                runs.append({"errno": exc.errno})
                continue
            runs.append(_run_record(res))
        out["runs"] = runs
        maps: dict[str, Any] = {}
        ringbufs: dict[str, list[str]] = {}
        for name in obj.maps:
            if _skipped_map(name):
                continue
            m = obj.maps[name]
            map_type = int(m.spec.type)
            if map_type == _RINGBUF:
                ringbufs[name] = [r.data.hex() for r in m.records() if not r.discarded]
            elif map_type not in _SKIP_TYPES:
                maps[name] = _dump([(k, m.lookup(k)) for k in m], map_type)
        out["maps"] = maps
        out["ringbufs"] = ringbufs
        out["variables"] = {
            section: {
                var: bytes(obj.maps[section].lookup(b"\0\0\0\0"))[off : off + size].hex()
                for var, (sec, off, size) in syms.items()
                if sec == section
            }
            for section in {sec for sec, _, _ in syms.values()}
            if section in obj.maps
        }
    return out


def differences(entry: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, str]]:
    """How pybpf's answer `got` (from `run_pybpf`) differs from the entry's reference.

    Each difference is (aspect, what): aspect is "verdict", "run" (retval,
    output packet or context of one run) or "state" (maps, ring buffers,
    globals after the runs). The reference is the kernel's record, or for
    types Linux cannot test-run the expectations derived from the source.
    """
    kernel = entry["kernel"]
    if got["verdict"] != kernel["verdict"]:
        why = got.get("reason") or kernel.get("reason") or ""
        return [("verdict", f"pybpf {got['verdict']}, kernel {kernel['verdict']}: {why}")]
    if kernel["verdict"] == "reject":
        return []
    if entry["results_from"] == "source":
        return _source_differences(entry["expected"], got)
    return _kernel_differences(kernel, got)


def _kernel_differences(kernel: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if len(got["runs"]) != len(kernel["runs"]):
        out.append(("run", f"{len(got['runs'])} runs, the kernel {len(kernel['runs'])}"))
    for i, (want, have) in enumerate(zip(kernel["runs"], got["runs"], strict=False)):
        if "errno" in want or "errno" in have:
            if have != want:
                out.append(("run", f"run {i}: {have} where the kernel gave {want}"))
            continue
        for key in ("retval", "data_out", "ctx_out"):
            if key == "ctx_out" and want[key] is None:
                continue
            if have.get(key) != want[key]:
                out.append(("run", f"run {i}: {key}"))
    if sorted(got["maps"]) != sorted(kernel["maps"]):
        out.append(("state", f"maps {sorted(got['maps'])}, the kernel {sorted(kernel['maps'])}"))
    for name, rows in kernel["maps"].items():
        if got["maps"].get(name) != rows:
            out.append(("state", f"map {name} after the runs"))
    if got["ringbufs"] != kernel["ringbufs"]:
        out.append(("state", "ring buffer records"))
    return out


def _source_differences(expected: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if [r.get("retval") for r in got["runs"]] != expected["retvals"]:
        out.append(("run", "retvals"))
    for name, rows in expected["maps"].items():
        if got["maps"].get(name) != rows:
            out.append(("state", f"map {name} after the runs"))
    for section, variables in expected["variables"].items():
        for var, value in variables.items():
            if got["variables"].get(section, {}).get(var) != value:
                out.append(("state", f"{section} {var}"))
    return out


def compare_table(engine: str, entries: list[dict[str, Any]] | None = None) -> list[str]:
    """The corpus' agreement with its reference in one engine, as text lines.

    The figures tests/corpus/README.md quotes, and one line per program
    that differs.
    """
    entries = load_manifest() if entries is None else entries
    accepted = [e for e in entries if e["kernel"]["verdict"] == "accept"]
    diffs = {e["name"]: differences(e, run_pybpf(e, engine)) for e in entries}
    aspects = {name: {a for a, _ in d} for name, d in diffs.items()}
    loaded = [e for e in accepted if "verdict" not in aspects[e["name"]]]
    runs_ok = [e for e in loaded if "run" not in aspects[e["name"]]]
    all_ok = [e for e in runs_ok if "state" not in aspects[e["name"]]]
    lines = [
        f"engine {engine}: {len(entries)} programs, {len(accepted)} accepted by the kernel",
        f"  verdict equals the kernel's        {sum('verdict' not in a for a in aspects.values())}"
        f" / {len(entries)}",
        f"  load and verify (of the accepted)  {len(loaded)} / {len(accepted)}",
        f"  retval and packet equal            {len(runs_ok)} / {len(loaded)}",
        f"  maps, globals, ring buffers equal  {len(all_ok)} / {len(runs_ok)}",
        f"  everything equal                   {sum(not d for d in diffs.values())} / {len(entries)}",
    ]
    for name, d in diffs.items():
        for aspect, what in d:
            lines.append(f"  differs: {name}: {aspect}: {what}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Re-record the manifest in this kernel (one line per case), or compare pybpf with it."""
    import argparse

    from .kernel import kernel_available, unavailable_reason

    parser = argparse.ArgumentParser(
        prog="python -m pybpf.testing.corpus",
        description="Record the running kernel's verdicts and run results on tests/corpus.",
    )
    parser.add_argument("manifest", nargs="?", help="the manifest to write (default: the corpus')")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="record nothing: compare pybpf (both engines) with the manifest and print the figures",
    )
    args = parser.parse_args(argv)
    if args.compare:
        entries = load_manifest(args.manifest)
        for engine in ("interpreter", "jit"):
            print("\n".join(compare_table(engine, entries)))
        return 0
    if args.manifest is not None and not args.manifest.endswith(".json"):
        parser.error(f"the manifest must be a .json file, not {args.manifest!r}")
    if not kernel_available():
        print(f"error: the kernel cannot be asked: {unavailable_reason()}", file=sys.stderr)
        return 1
    for entry in record(args.manifest):
        kernel = entry["kernel"]
        runs = kernel.get("runs")
        summary = (
            "" if runs is None else " ".join(str(r.get("retval", r.get("errno"))) for r in runs)
        )
        print(f"{entry['name']:24} {kernel['verdict']:7} {summary} {kernel.get('reason', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
