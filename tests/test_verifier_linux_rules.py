"""The kernel's rules the load path adds to PREVAIL's (verifier/linux_rules.py, memory.py).

Each test holds a program the verifier accepted before the rule was
checked (so it fails without the fix) and, where it helps, the safe
variant that must stay accepted.
"""

from __future__ import annotations

import pytest

from pybpf.elf.specs import MapSpec, ObjectSpec, ProgramSpec
from pybpf.isa import assemble
from pybpf.verifier import verify
from pybpf.verifier.program import verify_program

RINGBUF = MapSpec("rb", 27, 0, 0, 4096)
HASH = MapSpec("h", 1, 4, 8, 16)
PROG_ARRAY = MapSpec("progs", 3, 4, 4, 4)
DEVMAP = MapSpec("dev", 14, 4, 4, 4)
ARRAY = MapSpec("arr", 2, 4, 8, 4)


def _verify(source: str, section: str = "xdp", maps: tuple[MapSpec, ...] = ()):
    prog = ProgramSpec("p", section, tuple(assemble(source)))
    obj = ObjectSpec("p.o", {"p": prog}, {m.name: m for m in maps})
    return verify_program(prog, obj)


def _rejected(report, words: str) -> None:
    assert not report.ok, "accepted"
    assert words in report.first_failure.message, report.first_failure


# -- a. falling off the end ------------------------------------------------------------


def test_last_instruction_must_be_exit_or_jump() -> None:
    _rejected(_verify("r0 = 2"), "last insn is not an exit or jmp")
    _rejected(_verify("r0 = 2\nif r0 > 1 goto -2"), "last insn is not an exit or jmp")
    assert _verify("r0 = 2\nexit").ok
    # ends with a jump, but insn 2 is unreachable (check_cfg)
    _rejected(_verify("r0 = 2\nexit\nr0 = 1\ngoto -3"), "unreachable insn 2")


def test_verify_rejects_falling_off_the_end() -> None:
    report = verify(assemble("r0 = 0"))
    _rejected(report, "last insn is not an exit or jmp")
    assert report.first_failure.pc == 0


def test_function_falling_into_the_next_one_rejected() -> None:
    # main falls through its last instruction into the callee that starts at pc 3
    source = "call local 2\nr0 = 2\nr0 += 0\nr0 = 1\nexit"
    report = _verify(source)
    _rejected(report, "last insn is not an exit or jmp")
    assert report.first_failure.pc == 2


def test_jump_into_another_function_rejected() -> None:
    source = "call local 3\nif r0 == 0 goto +3\nr0 = 2\nexit\nr0 = 1\nexit"
    _rejected(_verify(source), "jump out of range from insn 1 to 5")


# -- b. exit values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "value", "ok"),
    [
        ("cgroup_skb/ingress", 1, True),
        ("cgroup_skb/ingress", 2, False),
        ("cgroup_skb/egress", 3, True),  # bit 1: congestion notification
        ("cgroup_skb/egress", 4, False),
        ("cgroup/sock_create", 0, True),
        ("cgroup/sock_create", 2, False),
        ("cgroup/connect4", 2, False),
        ("cgroup/bind4", 3, True),
        ("cgroup/recvmsg4", 0, False),
        ("cgroup/recvmsg4", 1, True),
        ("sockops", 2, False),
        ("xdp", 7, True),
        ("tc", 12345, True),
    ],
)
def test_exit_value_range(section: str, value: int, ok: bool) -> None:
    report = _verify(f"r0 = {value}\nexit", section)
    if ok:
        assert report.ok, report.render()
    else:
        _rejected(report, f"At program exit the register R0 has smin={value} smax={value}")


def test_exit_value_of_a_callee_is_not_checked() -> None:
    assert _verify("call local 2\nr0 = 1\nexit\nr0 = 7\nexit", "cgroup_skb/ingress").ok


def test_exit_value_range_of_an_unknown_value() -> None:
    source = "r0 = *(u32 *)(r1 + 0)\nexit"
    _rejected(_verify(source, "cgroup_skb/ingress"), "should have been in [0, 1]")
    assert _verify("r0 = *(u32 *)(r1 + 0)\nr0 &= 1\nexit", "cgroup_skb/ingress").ok


# -- c. ringbuf references ---------------------------------------------------------------

RESERVE = """
    r6 = r1
    r1 = map_fd 0
    r2 = 8
    r3 = 0
    call 131
    if r0 == 0 goto +{skip}
"""


def _ringbuf(body: str, skip: int) -> str:
    return RESERVE.format(skip=skip) + body + "\nr0 = 2\nexit"


def test_ringbuf_submitted_or_discarded_is_accepted() -> None:
    for func in (132, 133):
        source = _ringbuf(f"*(u64 *)(r0 + 0) = 1\nr1 = r0\nr2 = 0\ncall {func}", 4)
        report = _verify(source, maps=(RINGBUF,))
        assert report.ok, report.render()


def test_ringbuf_leak_rejected() -> None:
    _rejected(_verify(_ringbuf("*(u64 *)(r0 + 0) = 1", 1), maps=(RINGBUF,)), "Unreleased reference")


def test_ringbuf_leak_on_one_path_rejected() -> None:
    body = """
        r7 = r0
        r1 = *(u32 *)(r6 + 12)
        if r1 == 0 goto +3
        r1 = r7
        r2 = 0
        call 132
    """
    report = _verify(_ringbuf(body, 6), maps=(RINGBUF,))
    _rejected(report, "Unreleased reference")


def test_ringbuf_copy_unusable_after_submit() -> None:
    body = "r7 = r0\nr1 = r0\nr2 = 0\ncall 132\n*(u64 *)(r7 + 0) = 1"
    assert not _verify(_ringbuf(body, 5), maps=(RINGBUF,)).ok


def test_ringbuf_double_submit_rejected() -> None:
    body = "r7 = r0\nr1 = r0\nr2 = 0\ncall 132\nr1 = r7\nr2 = 0\ncall 132"
    assert not _verify(_ringbuf(body, 7), maps=(RINGBUF,)).ok


def test_ringbuf_spilled_and_reloaded_then_submitted() -> None:
    body = "*(u64 *)(r10 - 8) = r0\nr1 = *(u64 *)(r10 - 8)\nr2 = 0\ncall 132"
    report = _verify(_ringbuf(body, 4), maps=(RINGBUF,))
    assert report.ok, report.render()


def test_ringbuf_write_past_reserved_size_rejected() -> None:
    source = _ringbuf("*(u64 *)(r0 + 4) = 1\nr1 = r0\nr2 = 0\ncall 132", 4)
    _rejected(_verify(source, maps=(RINGBUF,)), "Upper bound must be at most")


def test_tail_call_with_outstanding_reservation_rejected() -> None:
    body = """
        r7 = r0
        r1 = r6
        r2 = map_fd 1
        r3 = 0
        call 12
        r1 = r7
        r2 = 0
        call 132
    """
    report = _verify(_ringbuf(body, 9), maps=(RINGBUF, PROG_ARRAY))
    _rejected(report, "tail_call would lead to reference leak")


def test_ringbuf_reserved_in_a_loop_without_submit_rejected() -> None:
    source = """
        r6 = 0
        r1 = map_fd 0
        r2 = 8
        r3 = 0
        call 131
        r6 += 1
        if r6 < 4 goto -7
        r0 = 2
        exit
    """
    assert not _verify(source, maps=(RINGBUF,)).ok


# -- d. packet pointers and helpers that move the packet ----------------------------------

CHECKED = """
    r6 = r1
    r2 = *(u32 *)(r6 + 0)
    r3 = *(u32 *)(r6 + 4)
    r4 = r2
    r4 += 14
    if r4 > r3 goto +{skip}
"""


def test_spilled_packet_pointer_invalid_after_adjust_head() -> None:
    body = """
        *(u64 *)(r10 - 8) = r2
        r1 = r6
        r2 = 0
        call 44
        r2 = *(u64 *)(r10 - 8)
        r0 = *(u8 *)(r2 + 0)
    """
    source = CHECKED.format(skip=6) + body + "\nr0 = 2\nexit"
    assert not _verify(source).ok
    safe = source.replace("call 44", "call 5")  # ktime_get_ns: the packet stays
    assert _verify(safe).ok, _verify(safe).render()


def test_fresh_packet_pointers_need_a_new_check_after_adjust_tail() -> None:
    body = """
        r1 = r6
        r2 = -20
        call 65
        r2 = *(u32 *)(r6 + 0)
        r3 = *(u32 *)(r6 + 4)
        r0 = *(u8 *)(r2 + 0)
    """
    assert not _verify(CHECKED.format(skip=6) + body + "\nr0 = 2\nexit").ok


def test_packet_pointer_saved_by_caller_invalid_after_callee_adjusts() -> None:
    source = (
        CHECKED.format(skip=3)
        + """
        r7 = r2
        call local 3
        r0 = *(u8 *)(r7 + 0)
        r0 = 2
        exit
        r1 = r6
        r2 = 0
        call 44
        r0 = 0
        exit
    """
    )
    assert not _verify(source).ok


# -- f. helpers per program type and map types of helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "func", "ok"),
    [
        ("xdp", 26, False),  # skb_load_bytes
        ("tc", 26, True),
        ("tc", 44, False),  # xdp_adjust_head
        ("xdp", 44, True),
        ("kprobe/sys_write", 9, False),  # skb_store_bytes
    ],
)
def test_helper_context_kind(section: str, func: int, ok: bool) -> None:
    report = _verify(f"r1 = 0\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0\ncall {func}\nr0 = 0\nexit", section)
    refused = "program of this type cannot use helper"
    if ok:
        assert report.ok or refused not in report.first_failure.message
    else:
        _rejected(report, refused)


def test_tail_call_needs_a_program_array() -> None:
    source = "r2 = map_fd 0\nr3 = 0\ncall 12\nr0 = 2\nexit"
    assert not _verify(source, maps=(HASH,)).ok  # (PREVAIL's map_fd_programs type already)
    assert _verify(source, maps=(PROG_ARRAY,)).ok


def test_redirect_map_needs_a_device_map() -> None:
    source = "r1 = map_fd 0\nr2 = 0\nr3 = 0\ncall 51\nexit"
    _rejected(_verify(source, maps=(ARRAY,)), "cannot pass map_type 2 into func")
    assert _verify(source, maps=(DEVMAP,)).ok


def test_ringbuf_helpers_need_a_ringbuf() -> None:
    source = "r1 = map_fd 0\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto +3\nr1 = r0\nr2 = 0\ncall 133\nr0 = 2\nexit"
    _rejected(_verify(source, maps=(HASH,)), "cannot pass map_type 1 into func bpf_ringbuf_reserve")


@pytest.mark.parametrize("spec", [RINGBUF, MapSpec("perf", 4, 4, 4, 4)], ids=["ringbuf", "perf"])
def test_lookup_in_a_map_that_has_no_elements_rejected(spec: MapSpec) -> None:
    source = """
        *(u32 *)(r10 - 4) = 0
        r1 = map_fd 0
        r2 = r10
        r2 += -4
        call 1
        r0 = 2
        exit
    """
    _rejected(_verify(source, maps=(spec,)), f"cannot pass map_type {spec.type} into func")


# -- e. callbacks --------------------------------------------------------------------------

# bpf_loop(8, cb, &buf, 0) with a 16-byte buffer at r10-16; the callback at pc 12
LOOP = """
    *(u64 *)(r10 - 8) = 0
    *(u64 *)(r10 - 16) = 0
    r3 = r10
    r3 += -16
    r1 = 8
    ld_pseudo r2, 4, {imm}
    r4 = 0
    call 181
    r0 = *(u32 *)(r10 - 12)
    r0 = 2
    exit
"""


def _loop(callback: str) -> str:
    return LOOP.format(imm=6) + callback  # lddw at pc 5, callback at 5 + 1 + 6 = 12


def test_bpf_loop_callback_out_of_bounds_rejected() -> None:
    callback = """
        r1 <<= 2
        r2 += r1
        *(u32 *)(r2 + 0) = 1
        r0 = 0
        exit
    """
    report = _verify(_loop(callback))
    assert not report.ok
    assert report.first_failure.pc == 14  # the store, reported at its own pc
    safe = callback.replace("r1 <<= 2", "if r1 > 3 goto +3\nr1 <<= 2")
    assert _verify(_loop(safe)).ok, _verify(_loop(safe)).render()


def test_bpf_loop_callback_writes_are_seen_by_the_caller() -> None:
    # the callback stores a non-number (a stack pointer) where the caller reads a number
    returns_slot = "r0 = *(u64 *)(r10 - 16)\n    r0 &= 1"
    source = _loop("*(u64 *)(r2 + 0) = r2\nr0 = 0\nexit")
    source = source.replace("r0 = *(u32 *)(r10 - 12)\n    r0 = 2", returns_slot)
    assert not _verify(source).ok
    assert _verify(source.replace("= r2\n", "= 1\n")).ok


def test_callback_return_value_must_be_0_or_1() -> None:
    _rejected(_verify(_loop("r0 = 2\nexit")), "At callback return the register R0")
    assert _verify(_loop("r0 = 1\nexit")).ok


def test_for_each_callback_value_bounds() -> None:
    source = """
        r1 = map_fd 0
        ld_pseudo r2, 4, 6
        r3 = 0
        r4 = 0
        call 164
        r0 = 2
        exit
        r0 = *(u64 *)(r3 + {off})
        r0 = 0
        exit
    """
    assert _verify(source.format(off=0), maps=(ARRAY,)).ok
    _rejected(_verify(source.format(off=4), maps=(ARRAY,)), "Upper bound must be at most")


def test_unknown_callback_rejected() -> None:
    source = "r1 = 8\nr2 = 0\nr3 = 0\nr4 = 0\ncall 181\nr0 = 2\nexit"
    _rejected(_verify(source), "not a known function")


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(0, True), (52, True), (53, False), (56, False), (-4, False)],
)
def test_flow_keys_is_a_pointer_to_56_bytes(offset: int, ok: bool) -> None:
    # __sk_buff.flow_keys (offset 144) of a flow dissector: the kernel's
    # PTR_TO_FLOW_KEYS, a struct bpf_flow_keys of 56 bytes the program fills.
    report = _verify(
        f"r2 = *(u64 *)(r1 + 144)\n*(u32 *)(r2 {offset:+d}) = 1\nr0 = 0\nexit\n",
        section="flow_dissector",
    )
    assert report.ok is ok, report.first_failure
