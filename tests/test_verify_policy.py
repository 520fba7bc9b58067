"""The load policy: `pybpf.load` verifies before anything runs; `verify=False` is explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

import pybpf
from pybpf import libbpf as lb
from pybpf.elf.specs import ObjectSpec
from pybpf.verifier.cache import VerifierCache, cache_key, default_cache
from pybpf.verifier.report import Report

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PACKET = bytes(14) + bytes.fromhex("4500001c000000004011") + bytes(40)


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Each test starts with an empty process cache and its own disk cache."""
    monkeypatch.setenv("PYBPF_CACHE_DIR", str(tmp_path / "cache"))
    default_cache.clear()
    yield
    default_cache.clear()


def unsafe(name: str) -> Path:
    path = EXAMPLES / "unsafe" / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_load_verifies_before_the_first_run() -> None:
    with pybpf.load(EXAMPLES / "xdp_counter.o") as obj:
        program = obj.programs["xdp_count"]
        assert program.report is None and not program.verified
        program.test_run(data=PACKET)
        assert program.verified
        assert isinstance(program.report, Report) and program.report.ok
    assert default_cache.stats.misses == 1


def test_object_load_verifies_every_program() -> None:
    with pybpf.load(EXAMPLES / "xdp_tailcall.o") as obj:
        obj.load()
        assert all(p.verified for p in obj.programs.values())
    assert default_cache.stats.misses == 4


def test_rejected_program_raises_verifier_error_with_report() -> None:
    path = unsafe("pkt_read_nocheck.o")
    with pybpf.load(path) as obj:
        with pytest.raises(pybpf.VerifierError) as info:
            obj.programs["pkt_read_nocheck"].test_run(data=PACKET)
        report = info.value.report
        assert isinstance(report, Report) and not report.ok
        first = report.first_failure
        assert first.pc == 1
        assert "packet_size" in first.message
        assert "pkt_read_nocheck.c:20" in first.source_line
        assert "pkt_read_nocheck rejected by the verifier" in str(info.value)
        assert "\n" not in str(info.value)
        assert not obj.loaded
        # Still rejected on a second attempt (and the answer comes from the cache).
        with pytest.raises(pybpf.VerifierError):
            obj.load()
        assert not obj.programs["pkt_read_nocheck"].verified


def test_verify_false_runs_in_the_bounds_checked_interpreter() -> None:
    path = unsafe("pkt_read_nocheck.o")
    with pybpf.load(path, verify=False) as obj:
        program = obj.programs["pkt_read_nocheck"]
        result = program.test_run(data=PACKET)
        assert result.retval in (1, 2)
        assert not program.verified
        assert program.engine_kind == "interpreter"
        # A short packet: the interpreter catches what the verifier would have.
        with pytest.raises(pybpf.PybpfError):
            program.test_run(data=b"\0" * 4)
    assert default_cache.stats.misses == 0


def test_unverified_program_refused_by_a_non_checking_engine() -> None:
    with pybpf.load(unsafe("pkt_read_nocheck.o"), verify=False, engine="jit") as obj:
        program = obj.programs["pkt_read_nocheck"]
        with pytest.raises(pybpf.LoadError, match="verified programs only"):
            program.test_run(data=PACKET)
        assert program.engine_kind is None


def test_libbpf_load_fails_with_eacces() -> None:
    obj = lb.bpf_object__open_file(str(unsafe("pkt_read_nocheck.o")))
    try:
        assert lb.bpf_object__load(obj) == -13
    finally:
        lb.bpf_object__close(obj)


def test_second_load_hits_the_memory_cache() -> None:
    for _ in range(2):
        with pybpf.load(EXAMPLES / "xdp_firewall.o") as obj:
            obj.load()
    stats = default_cache.stats
    assert (stats.misses, stats.memory_hits) == (1, 1)


def test_disk_cache_serves_a_new_process(tmp_path) -> None:
    with pybpf.load(EXAMPLES / "xdp_ratelimit.o") as obj:
        obj.load()
    assert list((tmp_path / "cache").rglob("*.json"))
    default_cache.clear()  # as a new process: memory empty, disk kept
    with pybpf.load(EXAMPLES / "xdp_ratelimit.o") as obj:
        obj.load()
    stats = default_cache.stats
    assert (stats.misses, stats.disk_hits) == (0, 1)


def test_cached_rejection_keeps_failure_and_source(tmp_path) -> None:
    path = unsafe("map_value_nullcheck.o")
    for expected in ("misses", "disk_hits"):
        default_cache.clear()
        with pybpf.load(path) as obj, pytest.raises(pybpf.VerifierError) as info:
            obj.load()
        assert getattr(default_cache.stats, expected) == 1
        first = info.value.report.first_failure
        assert first.pc == 7 and first.message.startswith("Possible null access")
        assert "map_value_nullcheck.c:24" in first.source_line


def test_unwritable_cache_dir_is_skipped(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("PYBPF_CACHE_DIR", str(blocker / "sub"))
    with pybpf.load(EXAMPLES / "xdp_counter.o") as obj:
        obj.load()
    assert default_cache.stats.misses == 1


def test_key_depends_on_bytes_maps_and_type() -> None:
    from dataclasses import replace

    spec = ObjectSpec.from_file(EXAMPLES / "xdp_counter.o")
    program = spec.programs["xdp_count"]
    key = cache_key(program, spec, "xdp")
    assert key == cache_key(program, spec, "xdp")
    assert key != cache_key(program, spec, "sched_cls")
    shorter = replace(program, instructions=program.instructions[:-1])
    assert key != cache_key(shorter, spec, "xdp")
    (name, first), *rest = spec.maps.items()
    bigger = replace(
        spec, maps={name: replace(first, value_size=first.value_size * 2), **dict(rest)}
    )
    assert key != cache_key(program, bigger, "xdp")


def test_private_cache_counts_lookups(tmp_path) -> None:
    cache = VerifierCache(tmp_path / "private")
    calls = []

    def compute() -> Report:
        calls.append(1)
        return Report()

    assert cache.lookup("k" * 64, compute).ok
    assert cache.lookup("k" * 64, compute).ok
    assert len(calls) == 1 and cache.stats.memory_hits == 1
