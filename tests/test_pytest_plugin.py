"""pybpf's pytest plugin (pybpf/testing/pytest_plugin.py): the README's example runs as
it stands, failures explain themselves, and the packet builders give valid packets."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from pybpf.testing.pytest_plugin import MapSnapshot, PacketBuilder, frame_diff, map_diff

ROOT = Path(__file__).resolve().parents[1]


def _readme_example() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- readme-example: (\S+) -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no example test file"
    return match.group(1), match.group(2)


def _pytest(path: Path, *args: str) -> subprocess.CompletedProcess:
    # A separate pytest, from the repository's root as a user would run it; the
    # plugin comes from pybpf's entry point, not from this test suite.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_example_runs_as_it_stands(tmp_path: Path) -> None:
    name, code = _readme_example()
    path = tmp_path / name
    path.write_text(code)
    done = _pytest(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_failures_name_fields_and_entries(tmp_path: Path) -> None:
    path = tmp_path / "test_fails.py"
    path.write_text(
        "def test_packet(bpf_object, bpf_packet, bpf_run):\n"
        "    obj = bpf_object('examples/xdp_firewall.o')\n"
        "    run = bpf_run(obj.programs['xdp_firewall'], bpf_packet.udp(dport=53))\n"
        "    assert run.data_out == bpf_packet.udp(dport=53, ttl=63)\n"
        "\n"
        "def test_maps(bpf_object, bpf_packet, bpf_run, bpf_maps):\n"
        "    obj = bpf_object('examples/xdp_firewall.o')\n"
        "    bpf_run(obj.programs['xdp_firewall'], bpf_packet.udp())\n"
        "    assert bpf_maps(obj.maps['verdicts']) == {0: 0, 1: 0, 2: 2, 3: 0}\n"
    )
    done = _pytest(path)
    assert done.returncode == 1
    out = done.stdout
    assert "2 failed" in out
    assert "ipv4.ttl (bytes 22-22): expected 3f, got 40" in out
    assert "ipv4.checksum" in out
    key, want, got = "02000000", "0200000000000000", "0100000000000000"
    assert f"{key}: expected {want}, got {got}" in out


def test_packets_are_valid_for_an_independent_parser() -> None:
    b = PacketBuilder()
    frame = dpkt.ethernet.Ethernet(b.udp(src="10.1.2.3", dst="10.4.5.6", sport=7, dport=9,
                                         payload=b"hi"))  # fmt: skip
    ip = frame.data
    assert socket.inet_ntoa(ip.src) == "10.1.2.3" and ip.udp.sport == 7 and ip.udp.data == b"hi"
    # dpkt recomputes checksums on pack: equal bytes mean ours were right
    assert bytes(frame) == b.udp(src="10.1.2.3", dst="10.4.5.6", sport=7, dport=9, payload=b"hi")
    v6 = dpkt.ethernet.Ethernet(b.tcp(src="fd00::1", dst="fd00::2", dport=443, flags="SA"))
    assert v6.type == 0x86DD and v6.data.tcp.dport == 443
    assert v6.data.tcp.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK
    tagged = b.icmp(vlan=42)
    assert struct.unpack_from("!HH", tagged, 12) == (0x8100, 42)
    icmp6 = dpkt.ethernet.Ethernet(b.icmp(src="fd00::1", dst="fd00::2"))
    assert icmp6.data.nxt == 58 and icmp6.data.data.type == 128
    with pytest.raises(TypeError, match="unknown packet option"):
        b.udp(vlam=3)


def test_frame_diff_and_map_diff() -> None:
    b = PacketBuilder()
    lines = frame_diff(b.udp(dport=53), b.udp(dport=54) + b"x")
    assert lines[0] == "length: expected 42 bytes, got 43"
    assert any(
        line.startswith("udp.dport (bytes 36-37): expected 0035, got 0036") for line in lines
    )
    snap = MapSnapshot({b"\x01\0\0\0": b"\x05\0"}, 4, 2)
    assert snap == {1: 5}
    assert snap != {1: 6}
    assert map_diff(snap.normalise({1: 6, 2: 0}), dict(snap)) == [
        "01000000: expected 0600, got 0500",
        "missing 02000000: 0000",
    ]


def test_bpf_replay_fixture_takes_xdp_and_tc_programs(bpf_object, bpf_replay, tmp_path) -> None:
    # The plugin is loaded in this suite too (pybpf's entry point): its fixtures work here.
    capture = ROOT / "tests" / "data" / "captures" / "veth.pcap"
    tc = bpf_object(ROOT / "examples" / "tc_rewrite.o")
    result = bpf_replay(tc.programs["tc_rewrite"], capture, out_dir=True)
    assert result.actions["ok"].frames == 42
    assert (tmp_path / "replay" / "ok.pcap").exists()
    xdp = bpf_object(ROOT / "examples" / "xdp_firewall.o")
    assert bpf_replay(xdp.programs["xdp_firewall"], capture).actions["pass"].frames == 42
