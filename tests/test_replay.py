"""Capture replay through XDP and tc programs (hooks/replay.py, `pybpf xdp replay`, `pybpf tc replay`).

The reference for every frame is pybpf's own test run of the same program
(`Program.test_run`, checked against the kernel's BPF_PROG_TEST_RUN by the
test-run suites): the replay's native loop must give each frame the same
action and leave it the same bytes, with maps counting the same.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dpkt
import pytest

import pybpf
from pybpf.cli.main import main
from pybpf.hooks.captures import Capture, CaptureError
from pybpf.hooks.replay import ACTIONS, ReplayResult, replay_xdp

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CAPTURES = Path(__file__).parent / "data" / "captures"
DROP_REPLIES = struct.pack("<I4s", 32, bytes([10, 77, 0, 2])), struct.pack("<I", 1)


def _frames(path: Path) -> list[bytes]:
    with Capture(path) as capture:
        return list(capture.frames())


def _expected(obj_path: Path, program: str, frames: list[bytes], setup=None):
    """(action, frame after the run) for each frame, by test runs of a fresh object."""
    with pybpf.load(obj_path, engine="jit") as obj:
        if setup:
            setup(obj)
        out = []
        for frame in frames:
            # An xdp_md in: the test run reports where data ended up (after the metadata).
            md = struct.pack("<6I", 0, len(frame), 0, 1, 0, 0)
            result = obj.programs[program].test_run(data=frame, ctx=md)
            action = ACTIONS[result.retval] if result.retval < len(ACTIONS) else "aborted"
            (data_at,) = struct.unpack_from("<I", result.ctx_out, 0)
            out.append((action, result.data_out[data_at:]))
        maps = {name: dict(m.items()) for name, m in obj.maps.live().items()}
    return out, maps


def _firewall_rules(obj) -> None:
    obj.maps["rules"][DROP_REPLIES[0]] = DROP_REPLIES[1]


@pytest.mark.parametrize(
    ("obj_name", "program", "setup"),
    [
        ("xdp_firewall.o", "xdp_firewall", _firewall_rules),
        ("xdp_vlan.o", "xdp_vlan_push", None),  # grows the head: frames leave rewritten
        ("xdp_vlan.o", "xdp_tail", None),  # trims the tail
        ("xdp_counter.o", None, None),
        ("xdp_meta.o", "xdp_meta_mark", None),  # metadata before the frame: not written
    ],
)
@pytest.mark.parametrize("capture", ["veth.pcap", "veth.pcapng"])
def test_replay_gives_each_frame_its_test_run(tmp_path, obj_name, program, setup, capture) -> None:
    path = EXAMPLES / obj_name
    frames = _frames(CAPTURES / capture)
    with pybpf.load(path, engine="jit") as obj:
        program = program or next(iter(obj.programs))
        if setup:
            setup(obj)
        result = replay_xdp(obj.programs[program], CAPTURES / capture, tmp_path, batch=16)
        maps = {name: dict(m.items()) for name, m in obj.maps.live().items()}
    expected, expected_maps = _expected(path, program, frames, setup)
    assert maps == expected_maps
    assert result.frames == len(frames) == 42
    assert result.bytes == sum(map(len, frames))
    assert result.faults == 0 and not result.interrupted
    for action in ACTIONS:
        want = [data for a, data in expected if a == action]
        assert result.actions[action].frames == len(want), action
        assert result.actions[action].bytes == sum(map(len, want)), action
        out = tmp_path / f"{action}.pcap"
        assert (_frames(out) if out.exists() else []) == want, action


def test_timestamps_are_carried_over(tmp_path) -> None:
    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        replay_xdp(prog, CAPTURES / "veth_nano.pcap", tmp_path)
    with open(CAPTURES / "veth_nano.pcap", "rb") as f:
        source = [(ts, bytes(frame)) for ts, frame in dpkt.pcap.Reader(f)]
    written = []
    for out in sorted(tmp_path.glob("*.pcap")):
        with open(out, "rb") as f:
            written += [(ts, bytes(frame)) for ts, frame in dpkt.pcap.Reader(f)]
    assert sorted(written) == sorted(source)


def test_tail_calls_in_a_replay(tmp_path) -> None:
    obj_path = EXAMPLES / "xdp_tailcall.o"
    frames = _frames(CAPTURES / "veth.pcap")

    def wire(obj) -> None:
        for proto, name in ((6, "xdp_tcp"), (17, "xdp_udp"), (1, "xdp_icmp")):
            obj.maps["dispatch"][struct.pack("<I", proto)] = obj.programs[name]

    with pybpf.load(obj_path, engine="jit") as obj:
        wire(obj)
        result = replay_xdp(obj.programs["xdp_dispatch"], CAPTURES / "veth.pcap", tmp_path)
        hits = dict(obj.maps["hits"].items())
    expected, maps = _expected(obj_path, "xdp_dispatch", frames, wire)
    assert hits == maps["hits"]
    assert {a: c.frames for a, c in result.actions.items()} == {
        a: sum(1 for x, _ in expected if x == a) for a in ACTIONS
    }


def _pcap(path: Path, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, ts=i)


def test_a_frame_longer_than_the_linear_part_runs_as_a_multi_buffer_frame(tmp_path) -> None:
    frames = _frames(CAPTURES / "veth.pcap")[:5]
    jumbo = frames[0][:14] + bytes(range(256)) * 20  # 5134 bytes: needs fragments
    path = tmp_path / "jumbo.pcap"
    _pcap(path, [frames[0], jumbo, frames[1]])
    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        result = replay_xdp(prog, path, tmp_path / "out")
        expected = [prog.test_run(data=f) for f in (frames[0], jumbo, frames[1])]
    assert result.frames == 3 and result.bytes == len(frames[0]) + len(jumbo) + len(frames[1])
    written = []
    for out in sorted((tmp_path / "out").glob("*.pcap")):
        written += _frames(out)
    assert sorted(written) == sorted(r.data_out for r in expected)


def test_damage_stops_the_replay_after_the_frames_before_it(tmp_path) -> None:
    data = (CAPTURES / "veth.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) - 30])  # inside the last frame
    result = ReplayResult()
    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        with pytest.raises(CaptureError, match=r"cut.pcap: offset \d+: the file ends inside"):
            replay_xdp(prog, path, tmp_path / "out", result=result, batch=8)
    assert result.frames == 41
    assert sum(len(_frames(p)) for p in (tmp_path / "out").glob("*.pcap")) == 41


def test_an_interrupt_keeps_what_ran(tmp_path) -> None:
    result = ReplayResult()

    def progress(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        with pytest.raises(KeyboardInterrupt):
            replay_xdp(prog, CAPTURES / "veth.pcap", tmp_path, progress=progress, batch=10)
    assert result.interrupted is False  # a fresh result object was not passed
    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        with pytest.raises(KeyboardInterrupt):
            replay_xdp(
                prog, CAPTURES / "veth.pcap", tmp_path, progress=progress, batch=10, result=result
            )
    assert result.interrupted and result.frames == 10
    assert sum(len(_frames(p)) for p in tmp_path.glob("*.pcap")) == 10


def test_only_xdp_programs_replay() -> None:
    with pybpf.load(EXAMPLES / "tc_rewrite.o", engine="jit") as obj:
        prog = next(iter(obj.programs.values()))
        with pytest.raises(pybpf.errors.NotSupportedError, match="xdp replay runs xdp programs"):
            replay_xdp(prog, CAPTURES / "veth.pcap")


def test_cli_replay_text_json_and_exit_codes(tmp_path, capsys) -> None:
    obj = str(EXAMPLES / "xdp_firewall.o")
    rule = "rules=200000000a4d0002:01000000"
    out = tmp_path / "out"
    args = ["xdp", "replay", obj, "--pcap", str(CAPTURES / "veth.pcapng"), "--map", rule]
    assert main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "xdp_firewall: 42 frames" in text
    assert any(line.split()[:2] == ["drop", "7"] for line in text.splitlines())
    assert "map verdicts (array)" in text
    assert sorted(p.name for p in out.iterdir()) == ["drop.pcap", "pass.pcap"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["actions"]["drop"] == {"frames": 7, "bytes": 1344}
    assert record["actions"]["pass"]["frames"] == 35
    assert {m["name"] for m in record["maps"]} == {"rules", "verdicts"}
    assert main(["xdp", "replay", obj, "--pcap", str(tmp_path / "none.pcap")]) == 2
    capsys.readouterr()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    assert main(["xdp", "replay", obj, "--pcap", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "bad.pcap: not a pcap or pcapng file" in captured.err
    assert captured.out == ""  # no summary of a replay that never started
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "veth.pcap").read_bytes()[:-30])
    assert main(["xdp", "replay", obj, "--pcap", str(cut)]) == 2
    captured = capsys.readouterr()
    assert "xdp_firewall: 41 frames" in captured.out  # what ran before the damage
    assert "cut.pcap: offset" in captured.err
    tc = str(EXAMPLES / "tc_rewrite.o")
    assert main(["xdp", "replay", tc, "--pcap", str(CAPTURES / "veth.pcap")]) == 1


# -- tc --------------------------------------------------------------------------------


def test_tc_replay_gives_each_frame_its_test_run(tmp_path) -> None:
    from pybpf.hooks.replay import TC_VERDICTS, replay_tc
    from pybpf.testing.packets import arp_frame, ipv6_frame, tcp_packet, udp_packet

    frames = _frames(CAPTURES / "veth.pcap") + [
        udp_packet(dport=53),  # rewritten to 5353, TTL decremented
        udp_packet(dport=53, ttl=1),  # shot
        tcp_packet(ttl=9),
        arp_frame(),
        ipv6_frame(),
        bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x00\x2e" + b"\xff\xff" + bytes(44),  # 802.3
    ]
    path = tmp_path / "in.pcap"
    _pcap(path, frames)
    obj_path = EXAMPLES / "tc_rewrite.o"
    with pybpf.load(obj_path, engine="jit") as obj:
        result = replay_tc(obj.programs["tc_rewrite"], path, tmp_path / "out", batch=7)
        rewritten = dict(obj.maps[".bss"].items())
    with pybpf.load(obj_path, engine="jit") as obj:
        prog = obj.programs["tc_rewrite"]
        expected = []
        for frame in frames:
            run = prog.test_run(data=frame)
            signed = run.retval - (1 << 32) if run.retval >> 31 else run.retval
            expected.append((TC_VERDICTS[signed + 1], run.data_out))
        assert rewritten == dict(obj.maps[".bss"].items())
    assert result.frames == len(frames)
    assert {v for v, _ in expected} == {"ok", "shot"}
    for verdict in TC_VERDICTS:
        want = [data for v, data in expected if v == verdict]
        assert result.actions[verdict].frames == len(want), verdict
        out = tmp_path / "out" / f"{verdict}.pcap"
        assert (_frames(out) if out.exists() else []) == want, verdict


def test_tc_replay_skips_frames_too_long_for_an_skb(tmp_path) -> None:
    from pybpf.hooks.replay import replay_tc
    from pybpf.testing.packets import udp_packet

    path = tmp_path / "in.pcap"
    _pcap(path, [udp_packet(), udp_packet(payload=bytes(4000)), udp_packet()])
    with pybpf.load(EXAMPLES / "tc_rewrite.o", engine="jit") as obj:
        result = replay_tc(obj.programs["tc_rewrite"], path)
    assert result.frames == 3 and result.skipped == 1
    assert result.actions["ok"].frames == 2


def test_cli_tc_replay(tmp_path, capsys) -> None:
    tc = str(EXAMPLES / "tc_rewrite.o")
    assert main(["tc", "replay", tc, "--pcap", str(CAPTURES / "veth.pcap"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["actions"]["ok"]["frames"] == 42
    xdp = str(EXAMPLES / "xdp_firewall.o")
    assert main(["tc", "replay", xdp, "--pcap", str(CAPTURES / "veth.pcap")]) == 1
    assert "tc replay runs sched_cls or sched_act programs" in capsys.readouterr().err
