"""bench_startup checks each command's output before it times anything."""

from __future__ import annotations

from benchmark_module import load_benchmark

bench = load_benchmark("bench_startup")
ETHERNET_IPV4 = bytes(12) + b"\x08\x00"


def _udp(port: int) -> bytes:
    ip = bytes([0x45] + [0] * 8 + [17] + [0] * 10)
    return ETHERNET_IPV4 + ip + bytes(2) + port.to_bytes(2, "big") + bytes(4)


def test_the_model_of_the_demo_follows_the_packet():
    dns = bench.model_output(_udp(53))
    assert dns[0] == "Return value: 1, duration (average): Nns (jit)"  # XDP_DROP
    assert dns[2] == "  key: 11000000  value: 0100000000000000  (17: 1)"
    assert bench.model_output(_udp(80))[0].startswith("Return value: 2,")  # XDP_PASS
    arp = bench.model_output(bytes(12) + b"\x08\x06" + bytes(28))
    assert not any("proto_count" in line for line in arp)
    assert bench.model_output(bench.PACKET.read_bytes()) == dns  # the demo's packet: UDP to 53


def test_each_command_of_the_tree_passes_its_check(tmp_path):
    env = bench.environment(str(tmp_path / "pycache"))
    assert "PYTHONDONTWRITEBYTECODE" not in env
    for case in bench.cases():
        _wall, _cpu, done = bench.run(case, env)
        assert bench.check(case, done) == [], case.name


def test_wrong_output_fails_the_checks():
    right = "\n".join(bench.model_output(bench.PACKET.read_bytes())).replace("Nns", "123ns")
    assert bench.check_run(right + "\n") == []
    assert bench.check_run(right.replace("Return value: 1,", "Return value: 2,")) != []
    assert bench.check_run(right.replace("(17: 1)", "(17: 2)")) != []
    helped = "Usage: pybpf [OPTIONS]\n\nCommands:\n" + "".join(
        f"  {name}  text\n" for name in bench.COMMANDS
    )
    assert bench.check_help(helped) == []
    assert bench.check_help(helped.replace("  prog  text\n", "")) != []
    assert bench.check_version(f"pybpf {bench.tree_version()}\n") == []
    assert bench.check_version("pybpf 0.0.0\n") != []
    assert bench.check_silent("") == [] and bench.check_silent("x") != []


def test_a_failed_check_stops_the_benchmark_before_it_times_or_records(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DOC", tmp_path / "benchmarks.md")
    monkeypatch.setattr(bench, "BLOCKED_PORT", 80)  # the model now expects XDP_PASS
    timed = []
    monkeypatch.setattr(bench, "measure", lambda *args: timed.append(args) or {})
    assert bench.main(["--runs", "1", "--warmup", "0", "--record"]) == 1
    assert timed == []
    assert not (tmp_path / "benchmarks.md").exists()
