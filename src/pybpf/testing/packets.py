"""Small, deterministic packet builders: Ethernet II, 802.1Q, IPv4, IPv6, UDP, TCP, ICMP(v6).

Checksums are filled in (IPv4 header, and UDP/TCP/ICMP over the pseudo
header where it applies), so programs that fix checksums can be checked by
recomputing them on the output.
"""

from __future__ import annotations

import socket
import struct

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
ETH_P_8021Q = 0x8100

SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(addr: str) -> bytes:
    """An IPv4 address in network order."""
    return socket.inet_aton(addr)


def ethernet(
    payload: bytes, proto: int = ETH_P_IP, src: bytes = SRC_MAC, dst: bytes = DST_MAC
) -> bytes:
    """An Ethernet II frame around `payload`."""
    return dst + src + struct.pack("!H", proto) + payload


def ipv4(
    payload: bytes,
    proto: int,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    ttl: int = 64,
    ident: int = 1,
) -> bytes:
    """An IPv4 header (no options, DF clear) with a valid checksum, then `payload`."""
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0, ip4(src), ip4(dst)
    )
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ip6(addr: str) -> bytes:
    """An IPv6 address in network order."""
    return socket.inet_pton(socket.AF_INET6, addr)


def is_ipv6(addr: str) -> bool:
    """Whether `addr` is written as an IPv6 address."""
    return ":" in addr


def ipv6(
    payload: bytes,
    next_header: int,
    src: str = "fd00::1",
    dst: str = "fd00::2",
    hop_limit: int = 64,
) -> bytes:
    """A 40-byte IPv6 header, then `payload`."""
    header = struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
    return header + ip6(src) + ip6(dst) + payload


def vlan(payload: bytes, vid: int, proto: int = ETH_P_IP, pcp: int = 0) -> bytes:
    """An 802.1Q tag (TCI and the inner EtherType) before `payload`: what follows the MACs."""
    return struct.pack("!HH", (pcp << 13) | (vid & 0xFFF), proto) + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    if is_ipv6(src):
        return ip6(src) + ip6(dst) + struct.pack("!IxxxB", length, proto)
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp(payload: bytes, sport: int, dport: int, src: str, dst: str) -> bytes:
    """A UDP header with a checksum over the pseudo header, then `payload`."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(_pseudo(src, dst, IPPROTO_UDP, length) + header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", csum) + payload


def tcp(
    payload: bytes, sport: int, dport: int, src: str, dst: str, flags: int = 0x02, seq: int = 1
) -> bytes:
    """A 20-byte TCP header (SYN by default) with a valid checksum, then `payload`."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    csum = checksum(_pseudo(src, dst, IPPROTO_TCP, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def icmp_echo(payload: bytes = b"ping", ident: int = 1, seq: int = 1) -> bytes:
    """An ICMP echo request with a valid checksum."""
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return header[:2] + struct.pack("!H", csum) + header[4:] + payload


def icmpv6_echo(
    src: str, dst: str, payload: bytes = b"ping", ident: int = 1, seq: int = 1
) -> bytes:
    """An ICMPv6 echo request with a valid checksum (over the IPv6 pseudo header)."""
    header = struct.pack("!BBHHH", 128, 0, 0, ident, seq)
    length = len(header) + len(payload)
    csum = checksum(_pseudo(src, dst, IPPROTO_ICMPV6, length) + header + payload)
    return header[:2] + struct.pack("!H", csum) + header[4:] + payload


def udp_packet(
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 53,
    payload: bytes = b"\x12\x34query",
    ttl: int = 64,
) -> bytes:
    """Ethernet + IPv4 + UDP."""
    return ethernet(ipv4(udp(payload, sport, dport, src, dst), IPPROTO_UDP, src, dst, ttl))


def tcp_packet(
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 80,
    payload: bytes = b"",
    ttl: int = 64,
) -> bytes:
    """Ethernet + IPv4 + TCP (SYN)."""
    return ethernet(ipv4(tcp(payload, sport, dport, src, dst), IPPROTO_TCP, src, dst, ttl))


def icmp_packet(src: str = "10.0.0.1", dst: str = "10.0.0.2", ttl: int = 64) -> bytes:
    """Ethernet + IPv4 + ICMP echo request."""
    return ethernet(ipv4(icmp_echo(), IPPROTO_ICMP, src, dst, ttl))


def ipv6_frame() -> bytes:
    """An Ethernet frame carrying a minimal IPv6 header (no upper layer): 'not IPv4'."""
    header = struct.pack("!IHBB", 6 << 28, 0, 59, 64) + bytes(16) + bytes(15) + b"\x01"
    return ethernet(header, ETH_P_IPV6)


def arp_frame() -> bytes:
    """An Ethernet ARP request (padded to the 60-byte minimum)."""
    body = (
        struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1)
        + SRC_MAC
        + ip4("10.0.0.1")
        + bytes(6)
        + ip4("10.0.0.2")
    )
    return ethernet(body.ljust(46, b"\0"), ETH_P_ARP)


def sample_packets() -> dict[str, bytes]:
    """A named, varied set for differential tests: protocols, sources, short frames."""
    return {
        "udp_dns": udp_packet(dport=53),
        "udp_other": udp_packet(src="10.1.2.3", dport=5000),
        "udp_ttl1": udp_packet(ttl=1),
        "tcp_syn": tcp_packet(src="192.168.1.7"),
        "tcp_blocked_src": tcp_packet(src="192.168.66.1"),
        "icmp": icmp_packet(src="172.16.0.9"),
        "ipv6": ipv6_frame(),
        "arp": arp_frame(),
        "short_eth": udp_packet()[:14],
        "short_ip": udp_packet()[:30],
    }
