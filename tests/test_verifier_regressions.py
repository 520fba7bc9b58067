"""Unsound acceptances found by the soundness fuzzer (tests/test_verifier_fuzz.py).

Each test holds the minimal program the fuzzer's counterexample shrank to.
The property is the fuzzer's: the verifier (`verify_program`, the path
`pybpf.load` takes) either rejects the program, or the bounds-checked
interpreter runs it on every packet without a fault. A test marked
`xfail(strict=True, reason="verifier bug: …")` documents a bug still open;
it turns into a failure (XPASS) once the verifier is fixed, and the mark
is then removed.
"""

from __future__ import annotations

import pytest

from fuzz_programs import Harness, describe
from pybpf.isa import assemble
from pybpf.isa.instruction import Instruction
from pybpf.verifier.program import verify_program

PACKETS = [bytes(n) for n in (14, 20, 34, 60, 128)]


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness()


def _assert_sound(harness: Harness, source: str) -> None:
    outcome = harness.check(source, PACKETS)
    assert outcome.crash is None, f"verifier crashed: {describe(outcome.crash)}"
    assert outcome.fault is None, f"accepted, then faulted: {describe(outcome.fault)}"


def _assert_rejected_by_default(harness: Harness, source: str) -> None:
    prog, obj = harness.object_spec(assemble(source))
    report = verify_program(prog, obj, prog_type="xdp")  # options as pybpf.load uses them
    assert not report.ok, "accepted"


# -- open bugs ------------------------------------------------------------------------


def test_store_at_frame_pointer_rejected(harness: Harness) -> None:
    _assert_sound(harness, "*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit\n")


def test_store_above_frame_through_register_rejected(harness: Harness) -> None:
    _assert_sound(harness, "r1 = 8\nr2 = r10\nr2 += r1\n*(u64 *)(r2 - 8) = 1\nr0 = 0\nexit\n")


def test_loop_with_variable_stack_store_keeps_checking(harness: Harness) -> None:
    source = """
        r9 = 0
    L1:
        r2 = r10
        r2 += -256
        r2 += r9
        *(u8 *)(r2 + 0) = 1
        r9 += 1
        if r9 < 8 goto L1
        r0 = *(u8 *)(r7 + 0)
        r0 = 2
        exit
    """
    _assert_sound(harness, source)


def test_loop_with_variable_stack_store_uninit_exit_rejected(harness: Harness) -> None:
    source = """
        r9 = 0
    L1:
        r2 = r10
        r2 += -256
        r2 += r9
        *(u8 *)(r2 + 0) = 1
        r9 += 1
        if r9 < 8 goto L1
        r0 = r7
        exit
    """
    assert not harness.verify(assemble(source)).ok


def test_narrow_read_of_ctx_pointer_field_rejected(harness: Harness) -> None:
    _assert_sound(harness, "r0 = *(u8 *)(r1 + 0)\nr0 = 0\nexit\n")


def test_misaligned_ctx_read_rejected(harness: Harness) -> None:
    _assert_sound(harness, "r0 = *(u32 *)(r1 + 1)\nr0 = 0\nexit\n")


def test_xdp_egress_ifindex_read_rejected(harness: Harness) -> None:
    _assert_sound(harness, "r0 = *(u32 *)(r1 + 20)\nr0 = 0\nexit\n")


def test_infinite_loop_rejected_by_default(harness: Harness) -> None:
    _assert_rejected_by_default(harness, "r0 = 0\nL:\ngoto L\nexit\n")


def test_loop_without_progress_rejected_by_default(harness: Harness) -> None:
    source = "r0 = 0\nr1 = 0\nL:\nr1 += 0\nif r1 != 64 goto L\nexit\n"
    _assert_rejected_by_default(harness, source)


def test_invalid_byteswap_width_is_rejected_cleanly(harness: Harness) -> None:
    insns = [
        Instruction(0xB7, 0, 0, 0, 1),  # r0 = 1
        Instruction(0xDC, 0, 0, 0, 14),  # r0 = be14 r0
        Instruction(0x95, 0, 0, 0, 0),  # exit
    ]
    report = harness.verify(insns)
    assert not report.ok


@pytest.mark.parametrize(
    ("prog_type", "source"),
    [
        ("xdp", "*(u16 *)(r1 + 12) = 0\nr0 = 0\nexit\n"),  # write to a read-only field
        ("xdp", "*(u32 *)(r1 + 12) = 0\nr0 = 0\nexit\n"),
        ("xdp", "r1 += 4\nr0 = *(u32 *)(r1 + 0)\nr0 = 0\nexit\n"),  # modified ctx pointer
        ("socket_filter", "r6 = r1\nr0 = *(u32 *)(r6 + 1)\nr0 = 0\nexit\n"),  # misaligned
        ("socket_filter", "r0 = *(u32 *)(r1 + 76)\nr0 = 0\nexit\n"),  # data: not here
        ("socket_filter", "*(u32 *)(r1 + 0) = 0\nr0 = 0\nexit\n"),  # len is read-only
        ("sched_cls", "r0 = *(u16 *)(r1 + 76)\nr0 = 0\nexit\n"),  # narrow pointer read
        ("sched_cls", "r0 = *(u32 *)(r1 + 144)\nr0 = 0\nexit\n"),  # flow_keys
    ],
)
def test_ctx_field_rules_checked_by_default(harness: Harness, prog_type: str, source: str) -> None:
    prog, obj = harness.object_spec(assemble(source))
    assert not verify_program(prog, obj, prog_type=prog_type).ok, "accepted"


@pytest.mark.parametrize(
    ("prog_type", "source"),
    [
        ("xdp", "r2 = *(u32 *)(r1 + 12)\nr0 = *(u32 *)(r1 + 4)\nr0 = 2\nexit\n"),
        ("socket_filter", "r0 = *(u8 *)(r1 + 1)\n*(u32 *)(r1 + 48) = 1\nr0 = 0\nexit\n"),
        ("sched_cls", "r0 = *(u32 *)(r1 + 76)\n*(u32 *)(r1 + 8) = 7\nr0 = 0\nexit\n"),
    ],
)
def test_valid_ctx_accesses_accepted(harness: Harness, prog_type: str, source: str) -> None:
    prog, obj = harness.object_spec(assemble(source))
    report = verify_program(prog, obj, prog_type=prog_type)
    assert report.ok, report.render()


# -- guards: shapes the fuzzer relies on, accepted and sound ----------------------------


def test_guarded_packet_read_is_accepted_and_sound(harness: Harness) -> None:
    source = """
        r6 = r1
        r7 = *(u32 *)(r6 + 0)
        r8 = *(u32 *)(r6 + 4)
        r4 = r7
        r4 += 14
        if r4 > r8 goto out
        r0 = *(u16 *)(r7 + 12)
    out:
        r0 = 2
        exit
    """
    outcome = harness.check(source, PACKETS)
    assert outcome.accepted, outcome.report.render() if outcome.report else outcome.crash
    assert outcome.fault is None


def test_off_by_one_packet_read_is_rejected(harness: Harness) -> None:
    source = """
        r6 = r1
        r7 = *(u32 *)(r6 + 0)
        r8 = *(u32 *)(r6 + 4)
        r4 = r7
        r4 += 14
        if r4 > r8 goto out
        r0 = *(u16 *)(r7 + 13)
    out:
        r0 = 2
        exit
    """
    assert not harness.check(source, PACKETS).accepted


def test_bounded_loop_with_termination_check_is_accepted(harness: Harness) -> None:
    source = "r0 = 0\nr9 = 0\nL:\nr0 += r9\nr9 += 1\nif r9 < 8 goto L\nr0 = 2\nexit\n"
    outcome = harness.check(source, PACKETS)
    assert outcome.accepted and outcome.fault is None


def test_ringbuf_discard_of_possibly_null_reservation_rejected() -> None:
    # Found by the slow (random-seed) mutation run: xdp_events.o with the
    # NULL check after bpf_ringbuf_reserve turned into `goto +0` was
    # accepted, then bpf_ringbuf_discard(NULL) faulted in the interpreter.
    import dataclasses
    from pathlib import Path

    from pybpf.elf.loader import load_object_spec

    path = Path(__file__).resolve().parents[1] / "examples" / "xdp_events.o"
    spec = load_object_spec(path)
    prog = spec.programs["xdp_events"]
    insns = list(prog.instructions)
    checks = [
        i for i, ins in enumerate(insns) if ins.opcode == 0x15 and ins.dst == 0 and ins.imm == 0
    ]
    assert checks, "xdp_events.o no longer has a NULL check of r0"
    assert verify_program(prog, spec).ok
    for i in checks:
        mutated = list(insns)
        mutated[i] = Instruction(0x05)  # goto +0: the NULL check is gone
        report = verify_program(dataclasses.replace(prog, instructions=tuple(mutated)), spec)
        assert not report.ok, f"NULL check at index {i} removed, still accepted"


@pytest.mark.parametrize(
    "source",
    [
        "r10 = r1\nr0 = 0\nexit\n",  # the shape the mutation fuzzer found (a mov into r10)
        "r0 = 0\nr10 += 8\nexit\n",
        "r0 = 0\nw10 = 1\nexit\n",
        "r10 = *(u64 *)(r1 + 0)\nr0 = 0\nexit\n",
        "r0 = 0\nr10 = 0x100000000 ll\nexit\n",
    ],
)
def test_writes_to_the_frame_pointer_are_rejected(harness: Harness, source: str) -> None:
    # The kernel: "frame pointer is read only"; before, the verifier accepted a
    # mov into r10 and the interpreter refused the program only when built.
    _assert_rejected_by_default(harness, source)


# A callee's frame lies below offset 0 (r10 moves down 512 bytes per call). The
# stack domain used to cover only [0, 4096): a store at a variable offset in a
# callee's frame forgot no cell there, so a spilled context pointer overwritten
# by a number was still reloaded as a pointer and dereferenced.
CALLEE_VAR_OFFSET_OVERWRITE = """
call pc+2
r0 = 0
exit
r6 = r1
call 7
r0 &= 8
r1 = r6
*(u64 *)(r10 - 8) = r1
r3 = r10
r3 += -16
r3 += r0
r4 = 0
*(u64 *)(r3 + 0) = r4
r1 = *(u64 *)(r10 - 8)
r0 = *(u32 *)(r1 + 0)
r0 = 0
exit
"""


def test_callee_stack_overwrite_at_variable_offset_forgets_the_spill(harness: Harness) -> None:
    _assert_rejected_by_default(harness, CALLEE_VAR_OFFSET_OVERWRITE)
    _assert_sound(harness, CALLEE_VAR_OFFSET_OVERWRITE)
