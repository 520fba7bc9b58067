"""Round trips through the three representations of an instruction.

bytes ⇄ `Instruction` ⇄ text (llvm-objdump syntax and conformance syntax),
for every opcode of the table, plus fuzzing of the decoder.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpf.errors import DecodeError
from pybpf.isa.assembler import assemble
from pybpf.isa.disasm import format_conformance, format_instruction, format_program
from pybpf.isa.instruction import Instruction, decode, encode, with_pcs
from pybpf.isa.opcodes import EXIT, LDDW, OPCODES
from strategies import instruction_of, programs

ALL_OPCODES = sorted(OPCODES)


@pytest.mark.parametrize("opcode", ALL_OPCODES, ids=lambda op: f"{OPCODES[op].name}-0x{op:02x}")
@given(data=st.data())
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
def test_every_opcode_round_trips(opcode: int, data: st.DataObject) -> None:
    insn = data.draw(instruction_of(opcode))
    assert decode(encode([insn])) == [insn]
    llvm = format_instruction(insn)
    assert assemble(llvm) == [insn], llvm
    conformance = format_conformance(insn)
    assert assemble(conformance) == [insn], conformance
    assert str(insn) == llvm


@given(programs())
def test_program_round_trips_through_bytes(prog: list[Instruction]) -> None:
    assert decode(encode(prog)) == prog


@given(programs())
def test_program_round_trips_through_both_syntaxes(prog: list[Instruction]) -> None:
    assert assemble("\n".join(format_instruction(i) for i in prog)) == prog
    assert assemble("\n".join(format_conformance(i) for i in prog)) == prog


@given(programs(), st.data())
def test_listing_with_labels_reassembles(prog: list[Instruction], data: st.DataObject) -> None:
    """format_program output (pcs, label lines, ` <name>` suffixes) reads back."""
    pcs = [pc for pc, _ in with_pcs(prog)]
    chosen = data.draw(st.sets(st.sampled_from(pcs)))
    labels = {pc: f"L{pc}" for pc in chosen}
    listing = format_program(prog, labels=labels, annotate=lambda pc: [f"; before {pc}"])
    assert assemble("\n".join(listing)) == prog


@given(st.binary(max_size=200))
def test_decoder_fuzz_gives_list_or_decode_error(data: bytes) -> None:
    try:
        insns = decode(data)
    except DecodeError:
        return
    assert encode(insns) == data  # decoding keeps every bit


@given(st.lists(st.binary(min_size=8, max_size=8), max_size=30))
def test_decoder_fuzz_on_slots_with_valid_opcodes(slots: list[bytes]) -> None:
    """Random slots whose opcode byte is valid reach the field checks."""
    data = b"".join(bytes([ALL_OPCODES[s[0] % len(ALL_OPCODES)]]) + s[1:] for s in slots)
    try:
        decode(data)
    except DecodeError as e:
        assert e.pc is not None


def test_lddw_missing_second_half_names_pc() -> None:
    data = encode([Instruction(EXIT), Instruction(LDDW, 1, imm=5)])[:16]
    with pytest.raises(DecodeError, match="pc 1: lddw is missing its second half") as info:
        decode(data, where="prog.o")
    assert info.value.pc == 1
    assert str(info.value).startswith("prog.o: ")


def test_lddw_second_half_must_be_zero() -> None:
    data = bytearray(encode([Instruction(LDDW, 1, imm=5)]))
    data[8] = 0x95  # an opcode in the second slot
    with pytest.raises(DecodeError, match="pc 1: lddw second half"):
        decode(bytes(data))


def test_length_not_multiple_of_eight_names_length() -> None:
    with pytest.raises(DecodeError, match="length 12 is not a multiple of 8") as info:
        decode(b"\x95" + b"\x00" * 11)
    assert info.value.pc is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ff00000000000000", "unknown opcode 0xff"),
        ("b70b000000000000", "invalid destination register r11"),
        ("bfc1000000000000", "invalid source register r12"),
        ("3f12020000000000", "invalid offset 2 for division"),
        ("b401080000000000", "invalid offset 8 for this mov"),  # movsx needs a register
        ("d401000018000000", "invalid byte swap width 24"),
        ("db12000002000000", "invalid atomic operation 0x2"),
    ],
)
def test_decoder_rejects_bad_fields(raw: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=f"pc 0: {reason}"):
        decode(bytes.fromhex(raw))
