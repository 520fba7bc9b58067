"""libbpf's open → configure → load sequence: autoload, map sizes, initial values.

`tests/corpus/autoload_mixed.o` holds a safe XDP program, one the kernel
rejects (`unchecked`), and a `SEC("?tc")` program that starts with
autoload off. With the kernel available, each configuration is also loaded
through libbpf, and the verdicts must agree.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

import pybpf
from pybpf import libbpf as lb
from pybpf.testing.kernel import KernelError, KernelObject, kernel_available, unavailable_reason

CORPUS = Path(__file__).parent / "corpus"
MIXED = CORPUS / "autoload_mixed.o"
GLOBALS = CORPUS / "globals_mixed.o"
kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason())


def test_question_mark_section_starts_with_autoload_off():
    with pybpf.open(MIXED) as obj:
        assert obj.programs["optional"].autoload is False
        assert obj.programs["optional"].section == "tc"
        assert obj.programs["good"].autoload is True


def test_a_rejected_autoloaded_program_fails_the_object_naming_it():
    with pybpf.open(MIXED) as obj:
        with pytest.raises(pybpf.VerifierError) as info:
            obj.load()
        assert info.value.program == "unchecked"
        assert "unchecked" in str(info.value)
        assert not obj.loaded


def test_autoload_off_leaves_the_program_out():
    with pybpf.open(MIXED) as obj:
        obj.programs["unchecked"].autoload = False
        obj.load()
        assert obj.programs["good"].test_run(data=bytes(64)).retval == 2
        assert obj.programs["unchecked"].report is None  # never verified
        with pytest.raises(pybpf.LoadError, match="autoload is off"):
            obj.programs["unchecked"].test_run(data=bytes(64))
        with pytest.raises(pybpf.LoadError):
            obj.programs["optional"].autoload = True  # too late: loaded


def test_load_with_autoload_names_only_those():
    with pybpf.load(MIXED, autoload=["good", "optional"]) as obj:
        assert obj.programs["optional"].test_run(data=bytes(200)).retval == 2  # TC_ACT_SHOT
    with pytest.raises(pybpf.LoadError, match="no program named"):
        pybpf.load(MIXED, autoload=["nope"])


def test_max_entries_before_load_resizes_the_map():
    with pybpf.open(MIXED, autoload=["good"]) as obj:
        assert obj.maps["seen"].spec.max_entries == 4
        obj.set_max_entries("seen", 64)
        program = obj.programs["good"]
        for length in range(14, 14 + 10):
            program.test_run(data=bytes(length))
        seen = obj.maps["seen"]
        assert seen.spec.max_entries == 64
        assert len(seen) == 10  # more than the 4 the object asked for
        with pytest.raises(pybpf.MapError) as info:
            obj.set_max_entries("seen", 8)
        assert info.value.errno == errno.EBUSY


def test_max_entries_left_alone_fills_up():
    with pybpf.open(MIXED, autoload=["good"]) as obj:
        for length in range(14, 14 + 10):
            obj.programs["good"].test_run(data=bytes(length))
        assert len(obj.maps["seen"]) == 4


def test_bad_sizes_are_refused():
    with pybpf.open(GLOBALS) as obj:
        with pytest.raises(pybpf.MapError) as info:
            obj.set_max_entries(".bss", 0)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(pybpf.MapError) as info:
            obj.set_initial_value(".rodata", b"\0" * 3)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(pybpf.MapError) as info:
            obj.set_value_size(".data", 128)
        assert info.value.errno == errno.EINVAL


def test_set_initial_value_replaces_the_section():
    with pybpf.open(GLOBALS) as obj:
        size = obj.maps[".rodata"].spec.value_size
        raw = bytearray(obj.maps[".rodata"][b"\0\0\0\0"])
        raw[4:8] = (11).to_bytes(4, "little")  # cfg_mult sits at offset 4
        obj.set_initial_value(".rodata", bytes(raw))
        assert len(raw) == size
        assert obj.rodata.cfg_mult == 11
        obj.load()
        with pytest.raises(pybpf.MapError) as info:
            obj.set_initial_value(".rodata", bytes(raw))
        assert info.value.errno == errno.EBUSY


def test_libbpf_names_drive_the_same_sequence():
    obj = lb.bpf_object__open_file(str(MIXED))
    try:
        prog = lb.bpf_object__find_program_by_name(obj, "unchecked")
        assert lb.bpf_program__set_autoload(prog, False) == 0
        seen = lb.bpf_object__find_map_by_name(obj, "seen")
        assert lb.bpf_map__set_max_entries(seen, 32) == 0
        assert lb.bpf_object__load(obj) == 0
        assert lb.bpf_map__set_max_entries(seen, 16) == -errno.EBUSY
        key = (60).to_bytes(4, "little")
        assert lb.bpf_map__lookup_elem(seen, key) is None
        lb.bpf_map__update_elem(seen, key, (5).to_bytes(8, "little"))
        assert lb.bpf_map__lookup_elem(seen, key) == (5).to_bytes(8, "little")
        assert lb.bpf_map__max_entries(seen) == 32
    finally:
        lb.bpf_object__close(obj)


def test_cli_program_option_loads_only_that_program():
    result = subprocess.run(
        [sys.executable, "-m", "pybpf", "verify", str(MIXED), "--program", "good"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unchecked" not in result.stdout
    packet = CORPUS.parent.parent / "examples" / "packets" / "udp_dns.bin"
    result = subprocess.run(
        [sys.executable, "-m", "pybpf", "prog", "run", str(MIXED), "--program", "good"]
        + ["--data-in", str(packet)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the kernel agrees -----------------------------------------------------------


@kernel
def test_kernel_refuses_the_object_with_the_rejected_program():
    with pytest.raises(KernelError):
        KernelObject(MIXED)
    with pytest.raises(pybpf.VerifierError):
        pybpf.open(MIXED).load()


@kernel
def test_kernel_and_pybpf_agree_with_autoload_off_and_a_bigger_map():
    config = {"autoload": {"unchecked": False}, "max_entries": {"seen": 64}}
    with KernelObject(MIXED, **config) as k, pybpf.open(MIXED) as obj:
        obj.programs["unchecked"].autoload = False
        obj.set_max_entries("seen", 64)
        for length in range(14, 14 + 10):
            assert (
                obj.programs["good"].test_run(data=bytes(length)).retval
                == k.test_run("good", bytes(length)).retval
            )
        ours = dict(obj.maps["seen"].items())
        theirs = dict(k.map("seen").items())
        assert ours == theirs
        assert len(ours) == 10


def test_perf_buffer_reads_what_the_program_output():
    obj = lb.bpf_object__open_file(str(CORPUS / "perf_events.o"))
    try:
        assert lb.bpf_object__load(obj) == 0
        events = lb.bpf_object__find_map_by_name(obj, "events")
        got: list[tuple[int, bytes]] = []
        pb = lb.perf_buffer__new(
            lb.bpf_map__fd(events), 8, lambda ctx, cpu, data, size: got.append((cpu, data[:size]))
        )
        assert pb is not None
        assert lb.perf_buffer__poll(pb, 0) == 0  # nothing yet
        frames = [bytes([n]) + bytes(11) + b"\x86\xdd" + bytes(n) for n in (1, 40, 90)]
        for frame in frames:
            assert obj.programs["report"].test_run(data=frame).retval == 2
        assert lb.perf_buffer__poll(pb, 100) == 3
        assert [(len(d), d[:4], d[4:6], d[6]) for _, d in got] == [
            (12, len(f).to_bytes(4, "little"), b"\xdd\x86", f[0]) for f in frames
        ]
        lb.perf_buffer__free(pb)
        # Without a reader, the helper finds the slot empty (the run still passes).
        assert obj.programs["report"].test_run(data=frames[0]).retval == 2
        assert lb.perf_buffer__new(lb.bpf_map__fd(events), 3, None) is None
        assert lb.libbpf_errno() == errno.EINVAL
    finally:
        lb.bpf_object__close(obj)
