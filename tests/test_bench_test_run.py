"""bench_test_run checks before it times: the model of xdp_count, pybpf and the kernel agree."""

from __future__ import annotations

from benchmark_module import load_benchmark

bench = load_benchmark("bench_test_run")
TCP = bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [6] + [0] * 10) + bytes(20)
ARP = bytes(12) + b"\x08\x06" + bytes(28)


def test_the_model_pybpf_and_the_kernel_agree_on_several_packets():
    for packet in (bench.PACKET.read_bytes(), TCP, ARP):
        assert bench.check(packet) == []
    assert bench.model(bench.PACKET.read_bytes(), 3)["retval"] == bench.XDP_DROP
    assert bench.model(TCP, 3) == {
        "retval": bench.XDP_PASS,
        "data_out": TCP,
        "proto_count": {6: 3},
        "packets_seen": 3,
    }
    assert bench.model(ARP, 3)["proto_count"] == {}


def test_a_disagreement_stops_the_benchmark_before_it_times_or_records(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DOC", tmp_path / "benchmarks.md")
    right = bench.model
    monkeypatch.setattr(bench, "model", lambda data, runs: {**right(data, runs), "retval": 99})
    assert bench.main(["--repeat", "10", "--kernel-repeat", "10", "--runs", "1", "--record"]) == 1
    assert not (tmp_path / "benchmarks.md").exists()
