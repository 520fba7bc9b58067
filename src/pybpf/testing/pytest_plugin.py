"""pybpf's pytest plugin: unit-test eBPF programs with packets, maps and captures.

Installed with pybpf (entry point `pytest11`), so its fixtures are there in
any test run:

* `bpf_object(path, **load_options)`: an object loaded with `pybpf.load`,
  closed after the test.
* `bpf_packet`: packet builders (`bpf_packet.udp(...)`, `.tcp(...)`,
  `.icmp(...)`, `.ether(...)`; IPv6 when the addresses are IPv6, an 802.1Q
  tag with `vlan=`), with checksums filled in; a scapy packet works
  wherever bytes do, when scapy is installed.
* `bpf_run(program, packet, ctx=None)`: one test run; a `BpfRun` with
  `retval`, `action` (the XDP action's or tc verdict's name) and `data_out`,
  a `Frame`: comparing it with `==` in an `assert` shows a byte-by-byte
  diff naming the header fields that differ.
* `bpf_maps(obj_or_map)`: a snapshot of map contents (`MapSnapshot`);
  `assert snapshot == {key: value}` shows the entries added, removed and
  changed.
* `bpf_replay(program, capture, out_dir=None)`: a capture replayed through
  an XDP or tc program (`hooks.replay`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..platform import verdicts
from . import packets as p

__all__ = ["BpfRun", "Frame", "MapSnapshot", "PacketBuilder", "frame_diff"]

XDP_ACTIONS = tuple(f"XDP_{name.upper()}" for name in verdicts.XDP_ACTIONS)
TC_VERDICTS = {
    value - 1: f"TC_ACT_{name.upper()}" for value, name in enumerate(verdicts.TC_VERDICTS)
}


# -- packets ---------------------------------------------------------------------------


def _bytes(packet: Any) -> bytes:
    """bytes of a packet given as bytes, bytearray, memoryview or a scapy packet."""
    if isinstance(packet, bytes | bytearray | memoryview):
        return bytes(packet)
    if hasattr(packet, "build"):  # scapy
        return bytes(packet)
    raise TypeError(f"not a packet: {type(packet).__name__}")


class PacketBuilder:
    """Ethernet frames with IPv4 or IPv6 (from the addresses' form) and UDP, TCP or ICMP."""

    SRC_MAC = p.SRC_MAC
    DST_MAC = p.DST_MAC

    def ether(
        self,
        payload: bytes = b"",
        *,
        ethertype: int = p.ETH_P_IP,
        src: bytes = p.SRC_MAC,
        dst: bytes = p.DST_MAC,
        vlan: int | None = None,
    ) -> bytes:
        """An Ethernet II frame (802.1Q-tagged with `vlan`) around `payload`."""
        if vlan is not None:
            return p.ethernet(p.vlan(payload, vlan, ethertype), p.ETH_P_8021Q, src, dst)
        return p.ethernet(payload, ethertype, src, dst)

    def _ip(self, l4: bytes, proto: int, src: str, dst: str, ttl: int, **eth: Any) -> bytes:
        if p.is_ipv6(src):
            return self.ether(p.ipv6(l4, proto, src, dst, ttl), ethertype=p.ETH_P_IPV6, **eth)
        return self.ether(p.ipv4(l4, proto, src, dst, ttl), **eth)

    def udp(
        self,
        *,
        src: str = "10.0.0.1",
        dst: str = "10.0.0.2",
        sport: int = 40000,
        dport: int = 53,
        payload: bytes = b"",
        ttl: int = 64,
        **eth: Any,
    ) -> bytes:
        """Ethernet + IPv4/IPv6 + UDP (`eth`: the `ether` options: vlan, src/dst MACs)."""
        l4 = p.udp(payload, sport, dport, src, dst)
        return self._ip(l4, p.IPPROTO_UDP, src, dst, ttl, **_macs(eth))

    def tcp(
        self,
        *,
        src: str = "10.0.0.1",
        dst: str = "10.0.0.2",
        sport: int = 40000,
        dport: int = 80,
        flags: str = "S",
        payload: bytes = b"",
        ttl: int = 64,
        **eth: Any,
    ) -> bytes:
        """Ethernet + IPv4/IPv6 + TCP; `flags` as letters (F S R P A U: `"SA"`)."""
        bits = sum(1 << "FSRPAU".index(f) for f in flags.upper())
        l4 = p.tcp(payload, sport, dport, src, dst, flags=bits)
        return self._ip(l4, p.IPPROTO_TCP, src, dst, ttl, **_macs(eth))

    def icmp(
        self,
        *,
        src: str = "10.0.0.1",
        dst: str = "10.0.0.2",
        payload: bytes = b"ping",
        ttl: int = 64,
        **eth: Any,
    ) -> bytes:
        """Ethernet + an ICMP echo request (ICMPv6 for IPv6 addresses)."""
        if p.is_ipv6(src):
            l4 = p.icmpv6_echo(src, dst, payload)
            return self._ip(l4, p.IPPROTO_ICMPV6, src, dst, ttl, **_macs(eth))
        return self._ip(p.icmp_echo(payload), p.IPPROTO_ICMP, src, dst, ttl, **_macs(eth))


def _macs(eth: dict[str, Any]) -> dict[str, Any]:
    allowed = {"vlan", "eth_src", "eth_dst"}
    unknown = set(eth) - allowed
    if unknown:
        raise TypeError(f"unknown packet option(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "vlan" in eth:
        out["vlan"] = eth["vlan"]
    if "eth_src" in eth:
        out["src"] = eth["eth_src"]
    if "eth_dst" in eth:
        out["dst"] = eth["eth_dst"]
    return out


# -- frames and their differences -------------------------------------------------------


class Frame(bytes):
    """A packet's bytes; `==` in an assert shows which bytes and header fields differ."""

    def __repr__(self) -> str:
        return f"Frame({len(self)} bytes: {self[:32].hex()}{'…' if len(self) > 32 else ''})"


def _fields(frame: bytes) -> list[tuple[int, int, str]]:
    """(offset, size, name) of the Ethernet, VLAN, IPv4/IPv6 and UDP/TCP/ICMP header fields."""
    out = [(0, 6, "eth.dst"), (6, 6, "eth.src"), (12, 2, "eth.type")]
    at, proto = 14, int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
    if proto == p.ETH_P_8021Q and len(frame) >= 18:
        out += [(14, 2, "vlan.tci"), (16, 2, "vlan.type")]
        at, proto = 18, int.from_bytes(frame[16:18], "big")
    l4 = None
    if proto == p.ETH_P_IP and len(frame) >= at + 20:
        names = [(0, 1, "version/ihl"), (1, 1, "tos"), (2, 2, "total_length"), (4, 2, "id"),
                 (6, 2, "frag"), (8, 1, "ttl"), (9, 1, "protocol"), (10, 2, "checksum"),
                 (12, 4, "saddr"), (16, 4, "daddr")]  # fmt: skip
        out += [(at + o, s, f"ipv4.{n}") for o, s, n in names]
        l4, at = frame[at + 9], at + (frame[at] & 0xF) * 4
    elif proto == p.ETH_P_IPV6 and len(frame) >= at + 40:
        names = [(0, 4, "version/class/flow"), (4, 2, "payload_length"), (6, 1, "next_header"),
                 (7, 1, "hop_limit"), (8, 16, "saddr"), (24, 16, "daddr")]  # fmt: skip
        out += [(at + o, s, f"ipv6.{n}") for o, s, n in names]
        l4, at = frame[at + 6], at + 40
    if l4 == p.IPPROTO_UDP:
        names = [(0, 2, "sport"), (2, 2, "dport"), (4, 2, "length"), (6, 2, "checksum")]
        out += [(at + o, s, f"udp.{n}") for o, s, n in names]
    elif l4 == p.IPPROTO_TCP:
        names = [(0, 2, "sport"), (2, 2, "dport"), (4, 4, "seq"), (8, 4, "ack"),
                 (12, 2, "offset/flags"), (14, 2, "window"), (16, 2, "checksum")]  # fmt: skip
        out += [(at + o, s, f"tcp.{n}") for o, s, n in names]
    elif l4 in (p.IPPROTO_ICMP, p.IPPROTO_ICMPV6):
        out += [(at, 1, "icmp.type"), (at + 1, 1, "icmp.code"), (at + 2, 2, "icmp.checksum")]
    return out


def frame_diff(expected: bytes, actual: bytes) -> list[str]:
    """Lines saying how `actual` differs from `expected`: lengths, header fields, bytes."""
    lines = []
    if len(expected) != len(actual):
        lines.append(f"length: expected {len(expected)} bytes, got {len(actual)}")
    diffs = [i for i in range(min(len(expected), len(actual))) if expected[i] != actual[i]]
    named = set()
    for offset, size, name in _fields(expected):
        want, got = expected[offset : offset + size], actual[offset : offset + size]
        if want != got and offset + size <= len(expected):
            lines.append(f"{name} (bytes {offset}-{offset + size - 1}): "
                         f"expected {want.hex()}, got {got.hex()}")  # fmt: skip
            named.update(range(offset, offset + size))
    rest = [i for i in diffs if i not in named]
    if rest:
        shown = ", ".join(f"{i}: {expected[i]:02x}→{actual[i]:02x}" for i in rest[:8])
        more = f" and {len(rest) - 8} more" if len(rest) > 8 else ""
        lines.append(f"payload bytes differ at {shown}{more}")
    return lines


# -- maps -------------------------------------------------------------------------------


class MapSnapshot(dict):
    """Map contents at one moment, key bytes → value bytes (per-CPU: a list per key).

    Compare it with a dict whose keys and values are bytes or ints (ints are
    packed little-endian to the map's key and value sizes)."""

    def __init__(self, contents: Mapping[bytes, Any], key_size: int, value_size: int) -> None:
        super().__init__(contents)
        self.key_size = key_size
        self.value_size = value_size

    def normalise(self, other: Mapping[Any, Any]) -> dict[bytes, Any]:
        """`other` with int keys and values packed as this map's bytes."""

        def pack(v: Any, size: int) -> Any:
            if isinstance(v, int):
                return v.to_bytes(size, "little", signed=v < 0)
            if isinstance(v, list):
                return [pack(x, size) for x in v]
            return bytes(v)

        return {pack(k, self.key_size): pack(v, self.value_size) for k, v in other.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self) == self.normalise(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def map_diff(expected: Mapping[bytes, Any], actual: Mapping[bytes, Any]) -> list[str]:
    """Lines naming the entries missing, unexpected and different."""
    lines = []

    def show(v: Any) -> str:
        return " ".join(x.hex() for x in v) if isinstance(v, list) else bytes(v).hex()

    for key in expected.keys() - actual.keys():
        lines.append(f"missing {key.hex()}: {show(expected[key])}")
    for key in actual.keys() - expected.keys():
        lines.append(f"unexpected {key.hex()}: {show(actual[key])}")
    for key in expected.keys() & actual.keys():
        if expected[key] != actual[key]:
            lines.append(f"{key.hex()}: expected {show(expected[key])}, got {show(actual[key])}")
    return sorted(lines)


# -- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BpfRun:
    """One test run: r0, its name for XDP and tc programs, the packet after it."""

    retval: int
    action: str | None
    data_out: Frame
    ctx_out: bytes | None
    duration: int


def _action_name(prog_type: Any, retval: int) -> str | None:
    name = getattr(prog_type, "name", "")
    if name == "XDP":
        return XDP_ACTIONS[retval] if retval < len(XDP_ACTIONS) else f"XDP action {retval}"
    if name in ("SCHED_CLS", "SCHED_ACT"):
        signed = retval - (1 << 32) if retval >> 31 else retval
        return TC_VERDICTS.get(signed, f"tc verdict {signed}")
    return None


def run_program(program: Any, packet: Any = b"", ctx: bytes | None = None, **kw: Any) -> BpfRun:
    """Test-run `program` (a `pybpf.Program`) on `packet`; see `bpf_run`."""
    result = program.test_run(data=_bytes(packet), ctx=ctx, **kw)
    return BpfRun(
        result.retval,
        _action_name(program.prog_type, result.retval),
        Frame(result.data_out),
        result.ctx_out,
        result.duration,
    )


def snapshot(source: Any) -> MapSnapshot | dict[str, MapSnapshot]:
    """A map's contents (`MapSnapshot`), or every live map's of an object by name."""
    if hasattr(source, "maps") and hasattr(source, "programs"):
        return {name: snapshot(m) for name, m in source.maps.live().items()}  # type: ignore[misc]
    spec = source.spec
    return MapSnapshot(dict(source.items()), spec.key_size, spec.value_size)


# -- the fixtures and the assertion hook -------------------------------------------------


@pytest.fixture
def bpf_object() -> Iterator[Callable[..., Any]]:
    """Load an object: `bpf_object(path, **pybpf.load options)`; closed after the test."""
    import pybpf

    loaded: list[Any] = []

    def load(path: str | Path, **options: Any) -> Any:
        obj = pybpf.load(path, **options)
        loaded.append(obj)
        return obj

    yield load
    for obj in reversed(loaded):
        obj.close()


@pytest.fixture
def bpf_packet() -> PacketBuilder:
    """Packet builders: `bpf_packet.udp(dport=53)`, `.tcp(flags="SA")`, `.icmp()`, `.ether()`."""
    return PacketBuilder()


@pytest.fixture
def bpf_run() -> Callable[..., BpfRun]:
    """Run a program once: `bpf_run(program, packet, ctx=None, repeat=1)` → `BpfRun`."""
    return run_program


@pytest.fixture
def bpf_maps() -> Callable[[Any], Any]:
    """Snapshot map contents: `bpf_maps(obj.maps["name"])` or `bpf_maps(obj)` (every map)."""
    return snapshot


@pytest.fixture
def bpf_replay(tmp_path: Path) -> Callable[..., Any]:
    """Replay a capture through an XDP or tc program: `bpf_replay(program, "in.pcap",
    out_dir=None)` → `ReplayResult` (frames per action or verdict; `out_dir=True` writes
    to the test's tmp_path)."""
    from ..hooks.replay import replay_tc, replay_xdp

    def replay(program: Any, capture: str | Path, out_dir: Any = None) -> Any:
        where = tmp_path / "replay" if out_dir is True else out_dir
        tc = getattr(program.prog_type, "name", "") in ("SCHED_CLS", "SCHED_ACT")
        return (replay_tc if tc else replay_xdp)(program, capture, where)

    return replay


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    """Readable failures for `Frame == bytes` and `MapSnapshot == dict`."""
    if op != "==":
        return None
    if isinstance(left, Frame) or isinstance(right, Frame):
        if isinstance(left, bytes | bytearray) and isinstance(right, bytes | bytearray):
            actual, expected = (bytes(left), bytes(right))
            if isinstance(right, Frame) and not isinstance(left, Frame):
                actual, expected = expected, actual
            return ["packets differ:", *frame_diff(expected, actual)]
    snap = (
        left if isinstance(left, MapSnapshot) else right if isinstance(right, MapSnapshot) else None
    )
    if snap is not None:
        other = right if snap is left else left
        if isinstance(other, Mapping):
            return ["map contents differ:", *map_diff(snap.normalise(other), dict(snap))]
    return None
