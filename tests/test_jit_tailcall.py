"""Native tail calls of the JIT (`engine.jit.native_tailcall`) against the interpreter.

A JIT-compiled `bpf_tail_call` to a JIT-compiled program whose entry is in
the execution context's native entry table runs without entering Python;
every other case goes through the Python helper. Results, map contents
and the 33-call limit must be the interpreter's.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.engine.interpreter import DEFAULT_BUDGET, Interpreter
from pybpf.engine.jit import JitEngine, fallback
from pybpf.engine.jit.abi import STATUS_TAIL_DONE, RunState
from pybpf.hooks.test_run import test_run
from pybpf.isa.assembler import assemble
from pybpf.isa.instruction import Instruction, with_pcs
from pybpf.platform.program_types import ProgramType
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import MAX_TAIL_CALLS, HelperEnv
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.maps import create_map

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
M32 = 0xFFFFFFFF


def key(index: int) -> bytes:
    return struct.pack("<I", index)


def packet(proto: int | None) -> bytes:
    """An Ethernet frame: IPv4 with protocol `proto`, or ARP when None."""
    if proto is None:
        return b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + bytes(20)


PACKETS = [packet(6), packet(17), packet(1), packet(99), packet(None), packet(6)]


class PythonCalls:
    """Counts what ran in Python: fallback dispatches and `HelperEnv.tail_call`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.dispatches = 0
        self.tail_calls = 0
        dispatch, tail_call = fallback._dispatch, HelperEnv.tail_call

        def counting_dispatch(*args):  # noqa: ANN002, ANN202
            self.dispatches += 1
            return dispatch(*args)

        def counting_tail_call(env, target):  # noqa: ANN001, ANN202
            self.tail_calls += 1
            return tail_call(env, target)

        monkeypatch.setattr(fallback, "_dispatch", counting_dispatch)
        monkeypatch.setattr(HelperEnv, "tail_call", counting_tail_call)

    @property
    def total(self) -> int:
        return self.dispatches + self.tail_calls


# -- the example: xdp_tailcall.o ----------------------------------------------------------


def _dispatcher(engine: str) -> pybpf.Object:
    obj = pybpf.load(EXAMPLES / "xdp_tailcall.o", engine=engine)
    for proto, name in ((6, "xdp_tcp"), (17, "xdp_udp"), (1, "xdp_icmp")):
        obj.maps["dispatch"][key(proto)] = obj.programs[name]
    return obj


def _hits(obj: pybpf.Object) -> list[int]:
    return [int.from_bytes(obj.maps["hits"][key(i)], "little") for i in range(5)]


def _results(obj: pybpf.Object, packets: list[bytes], repeat: int = 1) -> list[tuple]:
    program = obj.programs["xdp_dispatch"]
    out = []
    for data in packets:
        result = program.test_run(data, repeat=repeat)
        out.append((result.retval, result.data_out))
    return out


def test_xdp_tailcall_matches_the_interpreter() -> None:
    with _dispatcher("interpreter") as expected, _dispatcher("jit") as got:
        for repeat in (1, 3):
            assert _results(got, PACKETS, repeat) == _results(expected, PACKETS, repeat)
            assert _hits(got) == _hits(expected)
        assert {p.engine_kind for p in got.programs.values()} == {"jit"}
        assert _hits(got) == [4, 4, 8, 4, 4]


def test_jit_to_jit_tail_calls_run_no_python_after_warm_up(monkeypatch) -> None:
    with _dispatcher("interpreter") as expected, _dispatcher("jit") as got:
        # Warm-up: the targets' engines are built on their first tail call
        # (through the Python helper), which registers their native entries.
        assert _results(got, PACKETS) == _results(expected, PACKETS)
        want = _results(expected, PACKETS, repeat=5)
        calls = PythonCalls(monkeypatch)
        assert _results(got, PACKETS, repeat=5) == want
        # Tail calls made and the empty slot (protocol 99) alike: no Python.
        assert calls.total == 0
        assert _hits(got) == _hits(expected)


def test_no_python_on_the_hot_path(monkeypatch) -> None:
    with _dispatcher("jit") as obj:
        program = obj.programs["xdp_dispatch"]
        for data in PACKETS:
            program.test_run(data)  # warm-up: every target built and registered
        calls = PythonCalls(monkeypatch)
        for data in PACKETS:
            program.test_run(data, repeat=100)
        assert calls.total == 0
        assert _hits(obj)[2] == 2 + 200  # tcp: 2 warm-up runs, then 2 x 100


def test_first_tail_call_builds_the_target_through_python(monkeypatch) -> None:
    with _dispatcher("jit") as obj:
        tcp = obj.programs["xdp_tcp"]
        assert tcp.engine_kind is None  # not built yet
        calls = PythonCalls(monkeypatch)
        assert obj.programs["xdp_dispatch"].test_run(packet(6)).retval == 2
        assert calls.tail_calls == 1 and tcp.engine_kind == "jit"
        assert obj.programs["xdp_dispatch"].test_run(packet(6)).retval == 2
        assert calls.tail_calls == 1  # the second one was native
        assert _hits(obj)[2] == 2


def test_closed_target_behaves_as_in_the_interpreter() -> None:
    # The prog_array keeps the program object it was given; closing the
    # program unregisters its native entry, and the Python helper then does
    # what the interpreter does with the kept object.
    with _dispatcher("interpreter") as expected, _dispatcher("jit") as got:
        for obj in (expected, got):
            obj.programs["xdp_dispatch"].test_run(packet(1))
            obj.programs["xdp_icmp"].close()
        assert _results(got, PACKETS) == _results(expected, PACKETS)
        assert _hits(got) == _hits(expected)


# -- assembled programs in one execution context ------------------------------------------


class Harness:
    """Assembled programs sharing an execution context, a counter and a prog_array."""

    def __init__(self, ncpus: int = 2):
        self.context = ExecutionContext(ncpus=ncpus)
        memory = self.context.memory
        self.counter = create_map(MapSpec("counter", MapType.ARRAY, 4, 8, 1), memory)
        self.progs = create_map(MapSpec("progs", MapType.PROG_ARRAY, 4, 4, 8), memory)
        self.progs.context = self.context
        for map_ in (self.counter, self.progs):
            self.context.add_map(map_)
        self.helpers = linux_helpers()
        self.programs: list[AsmProgram] = []

    def program(self, source: str, engine: str = "jit") -> AsmProgram:
        text = source.format(counter=self.counter.address, progs=self.progs.address)
        program = AsmProgram(self, assemble(text), engine)
        self.programs.append(program)
        return program

    def count(self) -> int:
        return int.from_bytes(self.counter[key(0)], "little")

    def close(self) -> None:
        for program in self.programs:
            self.context.unregister_native_entry(program.id)
            program.engine.close()
        for map_ in (self.counter, self.progs):
            map_.close()


class AsmProgram:
    """What `Program` does for a prog_array: an id, an engine, a registered native entry."""

    def __init__(self, harness: Harness, insns: list, engine: str):
        context = harness.context
        arguments = {"helpers": harness.helpers, "memory": context.memory, "runtime": context}
        if engine == "jit":
            self.engine = JitEngine(insns, **arguments)
        else:
            self.engine = Interpreter(insns, budget=DEFAULT_BUDGET, **arguments)
        self.id = context.add_program(self)
        if engine == "jit":
            context.register_native_entry(self.id, self.engine, self.engine.entry_address)

    def run(self, data: bytes = packet(6), repeat: int = 1) -> int:
        return test_run(self.engine, ProgramType.XDP, data=data, repeat=repeat).retval


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.close()


COUNT_AND_JUMP = """
mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, {counter}
call 1
jeq %r0, 0, +2
mov %r1, 1
lock add [%r0], %r1
mov %r1, %r6
lddw %r2, {progs}
mov %r3, NEXT
call 12
exit
"""
"""Count one run, tail-call slot NEXT; r0 is the failed tail call's result."""


def _chain(engines: tuple[str, str]) -> tuple[list[int], list[int]]:
    """Two programs calling each other until the limit; (retvals, counts) for 1, 1, 3 runs."""
    h = Harness()
    try:
        first = h.program(COUNT_AND_JUMP.replace("NEXT", "1"), engines[0])
        second = h.program(COUNT_AND_JUMP.replace("NEXT", "0"), engines[1])
        h.progs[key(0)] = first
        h.progs[key(1)] = second
        retvals, counts = [], []
        for repeat in (1, 1, 3):
            retvals.append(first.run(repeat=repeat))
            counts.append(h.count())
        return retvals, counts
    finally:
        h.close()


@pytest.mark.parametrize(
    "engines", [("jit", "jit"), ("jit", "interpreter"), ("interpreter", "jit")]
)
def test_chain_stops_at_the_interpreters_limit(engines) -> None:
    expected = _chain(("interpreter", "interpreter"))
    runs = MAX_TAIL_CALLS + 1  # the first program, then 33 tail calls
    assert expected == ([-errno.ELOOP & M32] * 3, [runs, 2 * runs, 5 * runs])
    assert _chain(engines) == expected


def test_chain_between_jit_programs_is_native(monkeypatch) -> None:
    h = Harness()
    try:
        first = h.program(COUNT_AND_JUMP.replace("NEXT", "1"))
        second = h.program(COUNT_AND_JUMP.replace("NEXT", "0"))
        h.progs[key(0)] = first
        h.progs[key(1)] = second
        calls = PythonCalls(monkeypatch)
        assert first.run(repeat=10) == -errno.ELOOP & M32
        assert h.count() == 10 * (MAX_TAIL_CALLS + 1)
        assert calls.total == 0
    finally:
        h.close()


SUBPROGRAM_TAIL_CALL = """
mov %r6, 1000
call local sub
add %r0, %r6
exit
sub:
stdw [%r10-8], 5
lddw %r2, {progs}
mov %r3, INDEX
call 12
ldxdw %r1, [%r10-8]
add %r0, %r1
exit
"""
"""Main calls `sub`, which tail-calls slot INDEX: r0 = target's r0 + 1000, or err + 5 + 1000."""

TARGET = """
stdw [%r10-8], 37
ldxdw %r0, [%r10-8]
add %r0, 5
exit
"""


@pytest.mark.parametrize("target_engine", ["jit", "interpreter"])
@pytest.mark.parametrize("caller_engine", ["jit", "interpreter"])
def test_tail_call_from_a_subprogram_returns_to_its_caller(
    harness, caller_engine, target_engine
) -> None:
    # As Linux: the target replaces the subprogram's frame only; its r0 is
    # the subprogram's return value, and the caller's r6 survives.
    target = harness.program(TARGET, target_engine)
    harness.progs[key(3)] = target
    made = harness.program(SUBPROGRAM_TAIL_CALL.replace("INDEX", "3"), caller_engine)
    empty = harness.program(SUBPROGRAM_TAIL_CALL.replace("INDEX", "4"), caller_engine)
    past = harness.program(SUBPROGRAM_TAIL_CALL.replace("INDEX", "8"), caller_engine)
    for repeat in (1, 4):
        assert made.run(repeat=repeat) == 1042
        assert empty.run(repeat=repeat) == (-errno.ENOENT + 1005) & M32
        assert past.run(repeat=repeat) == (-errno.E2BIG + 1005) & M32
    assert made.engine.run(0) == 1042  # a direct run (no context) too


LOOP_TAIL_CALL = """
mov %r1, 3
lddw %r2, 0x1234
mov %r3, 0
mov %r4, 0
call 181
add %r0, 1000
exit
cb:
lddw %r2, {progs}
mov %r3, INDEX
call 12
mov %r0, 0
exit
"""
"""bpf_loop whose callback tail-calls slot INDEX (the callback is at pc 8)."""


def _with_callback(harness: Harness, source: str, engine: str) -> AsmProgram:
    insns = assemble(source.format(progs=harness.progs.address))
    for index, (pc, insn) in enumerate(with_pcs(insns)):
        if insn.opcode == 0x18 and insn.imm == 0x1234:
            insns[index] = Instruction(0x18, dst=insn.dst, src=4, imm=8 - pc - 1)
    return AsmProgram(harness, insns, engine)


@pytest.mark.parametrize("target_engine", ["jit", "interpreter"])
@pytest.mark.parametrize("caller_engine", ["jit", "interpreter"])
def test_tail_call_from_a_callback_returns_to_the_helper(
    harness, caller_engine, target_engine
) -> None:
    # The callback's frame is replaced, as a subprogram's: the target's r0
    # (42, non-zero) is the callback's, so bpf_loop stops after one round.
    # (The Linux verifier rejects such a callback: its r0 is then unknown.)
    target = harness.program(TARGET, target_engine)
    harness.progs[key(3)] = target
    made = _with_callback(harness, LOOP_TAIL_CALL.replace("INDEX", "3"), caller_engine)
    empty = _with_callback(harness, LOOP_TAIL_CALL.replace("INDEX", "4"), caller_engine)
    harness.programs += [made, empty]
    for repeat in (1, 3):
        assert made.run(repeat=repeat) == 1001
        assert empty.run(repeat=repeat) == 1003  # three iterations, then + 1000


def test_jit_to_interpreter_target_goes_through_python(harness, monkeypatch) -> None:
    target = harness.program(TARGET, "interpreter")
    harness.progs[key(3)] = target
    caller = harness.program(SUBPROGRAM_TAIL_CALL.replace("INDEX", "3"))
    calls = PythonCalls(monkeypatch)
    assert caller.run(repeat=3) == 1042
    assert calls.tail_calls == 3


def test_foreign_program_objects_go_through_python(harness, monkeypatch) -> None:
    other = Harness()
    try:
        # A program of another context whose id names nothing (or something
        # else) here: the slot is marked, and Python resolves the object.
        foreign = other.program(TARGET)
        harness.program(TARGET.replace("37", "0"))  # id 1 here: must not be called
        assert foreign.id == 1
        harness.progs[key(3)] = foreign
        slot = harness.progs.address_of(key(3))
        assert ctypes.c_uint64.from_address(slot).value == (1 << 32) | foreign.id
        caller = harness.program(SUBPROGRAM_TAIL_CALL.replace("INDEX", "3"))
        calls = PythonCalls(monkeypatch)
        assert caller.run() == 1042
        assert calls.tail_calls == 1
    finally:
        other.close()


def test_native_table_grows_and_unregisters() -> None:
    context = ExecutionContext(ncpus=1)
    address = context.native_entries_address()
    context.register_native_entry(3, "three", 0x3000)
    context.register_native_entry(200, "two hundred", 0x200000)
    grown = context.native_entries_address()
    assert grown != address
    table = (ctypes.c_uint64 * 3).from_address(grown)
    assert table[0] >= 201 and ctypes.c_uint64.from_address(grown + 8 * 3).value == 0x3000
    assert ctypes.c_uint64.from_address(grown + 8 * 200).value == 0x200000
    assert context.native_engine(200) == "two hundred"
    context.unregister_native_entry(3)
    assert ctypes.c_uint64.from_address(grown + 8 * 3).value == 0
    assert ctypes.c_uint64.from_address(address + 8 * 3).value == 0  # the old table too
    assert context.native_engine(3) is None


def test_run_state_layout() -> None:
    # New fields go at the end; the native repeat loop spells TAIL_DONE as 2.
    names = [name for name, _ in RunState._fields_]
    assert names[-5:] == ["tail_table", "tail_target", "tail_r0", "stack_last", "caller"]
    assert STATUS_TAIL_DONE == 2
