"""pybpf against the Linux kernel, on every example program and a set of packets.

Each scenario loads one example object twice, in the kernel (through
pybpf.testing.kernel, i.e. libbpf) and in pybpf (`pybpf.load`), applies the
same setup (`.rodata` constants, map entries, prog_array slots), then feeds
the same packets in the same order to both. After every packet the verdict
and the output packet must be identical (or both runs refused with the same
errno); after the last packet every map must hold the same contents.

Fair comparison of what the kernel spreads over CPUs:
- per-CPU maps: the kernel runs a test run on the calling thread's CPU, so
  the seam pins it to CPU 0, and pybpf is given the kernel's number of
  possible CPUs. The per-CPU value lists are compared as multisets: equal
  whatever CPU number each side counts on, yet stricter than comparing sums.
- ring buffers: the committed (not discarded) records, in order.
- prog_array maps are not compared: the kernel does not let user space
  read them back.

The whole module skips without the kernel (root, libbpf, bpf()). With the
kernel, nothing skips: a pybpf feature missing (NotSupportedError) fails
like a mismatch, so a regression cannot hide as a skipped scenario; a
known gap would be a strict xfail with its reason.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pybpf import load
from pybpf.errors import PybpfError
from pybpf.testing import packets as P
from pybpf.testing.kernel import (
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_RINGBUF,
    KernelError,
    KernelObject,
    kernel_available,
    possible_cpus,
    unavailable_reason,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
XDP_DROP, XDP_PASS = 1, 2

pytestmark = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


@dataclass
class Scenario:
    """One object, one entry program, its setup and the packets it is fed in order."""

    name: str
    obj: str
    program: str
    packets: list[tuple[str, bytes]]
    #: .rodata variable → (value, size in bytes)
    rodata: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: (map name, key, value) written before the first packet
    entries: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    #: (prog_array name, slot, program name)
    prog_slots: list[tuple[str, int, str]] = field(default_factory=list)


def _lpm(length: int, addr: str) -> bytes:
    return struct.pack("<I", length) + socket.inet_aton(addr)


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


SAMPLES = list(P.sample_packets().items())
#: Sample frames whose ethertype is IPv4 but which end inside the IP header.
TRUNCATED_L3 = ("short_eth", "short_ip")

SCENARIOS = [
    Scenario("counter", "xdp_counter.o", "xdp_count", SAMPLES),
    Scenario(
        "counter_port_5000",
        "xdp_counter.o",
        "xdp_count",
        SAMPLES + [("udp_5000", P.udp_packet(dport=5000))],
        rodata={"blocked_port": (5000, 2)},
    ),
    Scenario(
        "firewall",
        "xdp_firewall.o",
        "xdp_firewall",
        SAMPLES + [("tcp_in_24", P.tcp_packet(src="192.168.1.200"))],
        entries=[
            ("rules", _lpm(16, "192.168.0.0"), _u32(XDP_DROP)),
            ("rules", _lpm(24, "192.168.1.0"), _u32(XDP_PASS)),
            ("rules", _lpm(32, "10.1.2.3"), _u32(XDP_DROP)),
        ],
    ),
    Scenario(
        "ratelimit",
        "xdp_ratelimit.o",
        "xdp_ratelimit",
        SAMPLES + [(f"udp_again_{i}", P.udp_packet()) for i in range(4)],
        rodata={"limit": (2, 8)},
    ),
    Scenario("events", "xdp_events.o", "xdp_events", SAMPLES),
    Scenario(
        "tailcall",
        "xdp_tailcall.o",
        "xdp_dispatch",
        SAMPLES,
        prog_slots=[
            ("dispatch", P.IPPROTO_UDP, "xdp_udp"),
            ("dispatch", P.IPPROTO_ICMP, "xdp_icmp"),
        ],
    ),
    # A socket filter: skb context without data pointers, an array map,
    # .data, a bpf-to-bpf call with a bounded loop (two programs, one section).
    Scenario("socket_filter_a", "socket_filter.o", "filter_a", SAMPLES),
    Scenario("socket_filter_b", "socket_filter.o", "filter_b", SAMPLES),
    Scenario(
        "tc_rewrite",
        "tc_rewrite.o",
        "tc_rewrite",
        # frames cut inside the IPv4 header: see test_skb_truncated_l3_header
        [(n, f) for n, f in SAMPLES if n not in TRUNCATED_L3]
        + [("udp_ttl2", P.udp_packet(ttl=2, dport=53))],
    ),
]


def _run_kernel(k: KernelObject, program: str, frame: bytes) -> tuple:
    try:
        run = k.test_run(program, frame, cpu=0)
    except KernelError as refused:
        return ("error", refused.errno)
    return (run.retval, run.data_out)


def _run_pybpf(prog, frame: bytes) -> tuple:
    try:
        run = prog.test_run(data=frame)
    except PybpfError as refused:
        if getattr(refused, "errno", None) is None:
            raise
        return ("error", refused.errno)
    return (run.retval, bytes(run.data_out))


def _normalise(value) -> bytes | tuple[bytes, ...]:
    if isinstance(value, list):  # per-CPU: a multiset of the CPUs' values
        return tuple(sorted(bytes(v) for v in value))
    return bytes(value)


def _kernel_contents(k: KernelObject) -> tuple[dict[str, dict], dict[str, list[bytes]]]:
    maps, rings = {}, {}
    for name in k.map_names():
        m = k.map(name)
        if m.type == BPF_MAP_TYPE_PROG_ARRAY:
            continue
        if m.type == BPF_MAP_TYPE_RINGBUF:
            rings[name] = m.consume()
            continue
        maps[name] = {key: _normalise(v) for key, v in m.items()}
    return maps, rings


def _pybpf_contents(obj, maps: list[str], rings: list[str]):
    ours = {}
    for name in maps:
        ours[name] = {bytes(key): _normalise(v) for key, v in obj.maps[name].items()}
    our_rings = {}
    for name in rings:
        ring = obj.maps[name]
        our_rings[name] = [bytes(r.data) for r in ring.records() if not r.discarded]
    return ours, our_rings


ENGINES = ("interpreter", "jit")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_kernel_and_pybpf_agree(scenario: Scenario, engine: str) -> None:
    path = EXAMPLES / scenario.obj
    kernel_globals = {
        name: value.to_bytes(size, "little") for name, (value, size) in scenario.rodata.items()
    }
    with KernelObject(path, globals=kernel_globals) as k:
        with load(path, ncpus=possible_cpus(), engine=engine) as obj:
            for name, (value, _size) in scenario.rodata.items():
                setattr(obj.rodata, name, value)
            for map_name, key, value in scenario.entries:
                k.map(map_name).update(key, value)
                obj.maps[map_name][key] = value
            for map_name, slot, prog_name in scenario.prog_slots:
                k.set_prog_array(map_name, slot, prog_name)
                obj.maps[map_name][_u32(slot)] = obj.programs[prog_name]
            prog = obj.programs[scenario.program]

            for packet_name, frame in scenario.packets:
                theirs = _run_kernel(k, scenario.program, frame)
                ours = _run_pybpf(prog, frame)
                assert ours == theirs, f"{scenario.name}: packet {packet_name}"
            assert prog.engine_kind == engine

            kernel_maps, kernel_rings = _kernel_contents(k)
            our_maps, our_rings = _pybpf_contents(obj, list(kernel_maps), list(kernel_rings))
            for name in kernel_maps:
                assert our_maps[name] == kernel_maps[name], f"{scenario.name}: map {name}"
            for name in kernel_rings:
                assert our_rings[name] == kernel_rings[name], f"{scenario.name}: ringbuf {name}"


@pytest.mark.parametrize("engine", ENGINES)
def test_skb_truncated_l3_header(engine: str) -> None:
    """skb test runs of IPv4 frames that end inside the IP header.

    The kernel here (6.18) refuses them with EINVAL before running the
    program (it accepts an IPv4 frame from 34 bytes, IPv6 from 54); pybpf
    must do the same: both refuse with the same errno, or both give the same run.
    """
    path = EXAMPLES / "tc_rewrite.o"
    samples = P.sample_packets()
    with KernelObject(path) as k, load(path, ncpus=possible_cpus(), engine=engine) as obj:
        prog = obj.programs["tc_rewrite"]
        for name in TRUNCATED_L3:
            theirs = _run_kernel(k, "tc_rewrite", samples[name])
            ours = _run_pybpf(prog, samples[name])
            # ("error", errno) on both sides, or the same (retval, data_out)
            assert ours == theirs, name
