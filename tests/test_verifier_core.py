"""Unit tests of the verifier core: IR, assertions, CFG/WTO, state, the `verify` API."""

from __future__ import annotations

from pybpf.isa import assemble
from pybpf.verifier import VerifierError, to_ir, verify
from pybpf.verifier.assertions import (
    AccessType,
    Comparable,
    TypeConstraint,
    TypeGroup,
    ValidAccess,
    explicate,
)
from pybpf.verifier.cfg import ENTRY, EXIT, Cycle, build_cfg, loop_heads, weak_topological_order
from pybpf.verifier.constraints import parse_invariant
from pybpf.verifier.ir import (
    Bin,
    BinOp,
    Condition,
    CondOp,
    Imm,
    Jmp,
    LoadMapFd,
    Mem,
    Reg,
)
from pybpf.verifier.state import State


def test_jump_targets_become_absolute_labels() -> None:
    ir = to_ir(assemble("r0 = 1\nif r0 > 2 goto +1\nr0 = 2\nexit"))
    assert ir[1] == Jmp(Condition(CondOp.GT, Reg(0), Imm(2)), 3)


def test_lddw_takes_two_pcs() -> None:
    ir = to_ir(assemble("r1 = 0x100000000 ll\nr1 = map_fd 3\nexit"))
    assert sorted(ir) == [0, 2, 4]
    assert ir[0] == Bin(BinOp.MOV, Reg(1), Imm(1 << 32), True, lddw=True)
    assert ir[2] == LoadMapFd(Reg(1), 3)


def test_store_assertions_print_as_prevail() -> None:
    (insn,) = to_ir(assemble("*(u64 *)(r1 + 8) = r2")).values()
    assert isinstance(insn, Mem)
    texts = [str(a) for a in explicate(insn)]
    assert texts == [
        "r1.type in {ctx, stack, packet, shared, socket, alloc_mem}",
        "valid_access(r1.offset+8, width=8) for write",
        "r1.type != stack -> r2.type == number",
    ]


def test_register_comparison_needs_comparable_operands() -> None:
    (insn,) = to_ir(assemble("if r1 > r2 goto +0")).values()
    kinds = [type(a) for a in explicate(insn)]
    assert kinds == [ValidAccess, ValidAccess, TypeConstraint, Comparable]
    assert ValidAccess(Reg(1), 0, Imm(4), False, AccessType.read).__str__() == (
        "valid_access(r1.offset, width=4) for read"
    )
    assert str(TypeConstraint(Reg(3), TypeGroup.number)) == "r3.type == number"


def test_cfg_of_loop_has_one_cycle_with_conditional_edges() -> None:
    cfg = build_cfg(to_ir(assemble("r0 = 0\nr0 += 1\nif r0 < 10 goto -2\nexit")))
    assert (2, 1) in cfg.insns and (2, 3) in cfg.insns  # the two assume edges
    wto = weak_topological_order(cfg)
    assert wto[0] == ENTRY and wto[-1] == EXIT
    assert any(isinstance(c, Cycle) for c in wto)
    assert list(loop_heads(wto)) == [1]
    assert cfg.basic_blocks()


def test_join_keeps_offsets_of_each_possible_type() -> None:
    a = parse_invariant(["r1.type=ctx", "r1.ctx_offset=0"])
    b = parse_invariant(["r1.type=packet", "r1.packet_offset=4"])
    joined = a.join(b)
    assert joined.strings() == {"r1.type in {ctx, packet}", "r1.ctx_offset=0", "r1.packet_offset=4"}
    assert a.leq(joined) and b.leq(joined)
    assert State.bottom().strings() == {"_|_"}


def test_verify_accepts_a_bounded_loop() -> None:
    report = verify(assemble("r0 = 0\nr0 += 1\nif r0 < 10 goto -2\nexit"))
    assert report.ok, report.render()


def test_verify_rejects_out_of_bounds_context_read() -> None:
    report = verify(assemble("r0 = *(u64 *)(r1 + 100)\nexit"))
    assert not report.ok
    first = report.first_failure
    assert first is not None and first.pc == 0
    assert isinstance(first.assertion, ValidAccess)
    error = VerifierError(report)
    assert error.report is report


def test_verify_rejects_uninitialised_return_value() -> None:
    report = verify(assemble("exit"))
    assert not report.ok
    assert isinstance(report.first_failure.assertion, TypeConstraint)
