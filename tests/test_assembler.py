"""The assembler: both syntaxes, labels, errors, and the shared test suites."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import SHARED
from pybpf.errors import AsmError
from pybpf.isa.assembler import assemble
from pybpf.isa.disasm import format_conformance, format_instruction
from pybpf.isa.instruction import decode, encode
from strategies import instructions

CONFORMANCE = SHARED / "conformance" / "tests"
CONFORMANCE_FILES = sorted(CONFORMANCE.glob("*.data")) if CONFORMANCE.is_dir() else []


def asm_hex(text: str) -> str:
    return encode(assemble(text)).hex()


# --- hand-computed encodings ------------------------------------------------
# Each slot is opcode, src<<4|dst, off (le16), imm (le32).

CONFORMANCE_LINES = [
    ("add %r0, 1", "0700000001000000"),
    ("add64 %r1, %r2", "0f21000000000000"),
    ("mov32 %r0, -1", "b4000000ffffffff"),
    ("mov %r0, 0xffffff80", "b700000080ffffff"),
    ("neg32 %r3", "8403000000000000"),
    ("ldxw %r0, [%r1+4]", "6110040000000000"),
    ("ldxsb %r0, [%r10-1]", "91a0ffff00000000"),
    ("stxdw [%r10-8], %r1", "7b1af8ff00000000"),
    ("stw [%r1+2], 0x1234", "6201020034120000"),
    ("sth [%r0], 0x1234", "6a00000034120000"),
    ("lddw %r0, 0x123456789", "18000000896745230000000001000000"),
    ("jeq %r1, 0, +2", "1501020000000000"),
    ("jne32 %r1, %r2, +1", "5e21010000000000"),
    ("jsge %r1, 0xffffffff, +1", "75010100ffffffff"),
    ("ja -1", "0500ffff00000000"),
    ("ja32 -1", "06000000ffffffff"),
    ("call 5", "8500000005000000"),
    ("call helper 5", "8500000005000000"),
    ("call %r2", "8d02000000000000"),
    ("call local -2", "85100000feffffff"),
    ("lock add [%r10-8], %r1", "db1af8ff00000000"),
    ("lock fetch add32 [%r10-8], %r1", "c31af8ff01000000"),
    ("lock fetch xor [%r1+8], %r3", "db310800a1000000"),
    ("lock cmpxchg [%r10-8], %r1", "db1af8fff1000000"),
    ("lock xchg32 [%r1], %r2", "c3210000e1000000"),
    ("movsx1632 %r0, %r1", "bc10100000000000"),
    ("movsx3264 %r0, %r1", "bf10200000000000"),
    ("sdiv %r0, 3", "3700010003000000"),
    ("smod32 %r0, %r1", "9c10010000000000"),
    ("le16 %r0", "d400000010000000"),
    ("be32 %r1", "dc01000020000000"),
    ("bswap64 %r2", "d702000040000000"),
    ("swap16 %r2", "d702000010000000"),
    ("ldabsh 12", "280000000c000000"),
    ("ldindb %r1, 4", "5010000004000000"),
    ("exit", "9500000000000000"),
    ("MOV %r0, 1  # upper case and a comment", "b700000001000000"),
]

LLVM_LINES = [
    ("r0 = 1", "b700000001000000"),
    ("w0 = 1", "b400000001000000"),
    ("r0 += r1", "0f10000000000000"),
    ("w1 <<= 3", "6401000003000000"),
    ("r4 s>>= 7", "c704000007000000"),
    ("r0 = -r0", "8700000000000000"),
    ("w0 = - w0", "8400000000000000"),
    ("r0 = *(u32 *)(r1 + 4)", "6110040000000000"),
    ("r0 = *(u32 *)(r1 + 0x4)", "6110040000000000"),
    ("r0 = *(s16 *)(r1 + 2)", "8910020000000000"),
    ("*(u64 *)(r10 - 8) = r1", "7b1af8ff00000000"),
    ("*(u32 *)(r10 - 8) = 5", "620af8ff05000000"),
    ("r1 = 0x1234 ll", "18010000341200000000000000000000"),
    ("r1 = -1 ll", "18010000ffffffff00000000ffffffff"),
    ("r1 = 9223372036854775807ll", "18010000ffffffff00000000ffffff7f"),
    ("r1 = map_fd 3", "18110000030000000000000000000000"),
    ("r1 = map_val(3) + 4", "18210000030000000000000004000000"),
    ("r1 = map_by_idx(2)", "18510000020000000000000000000000"),
    ("r1 = mva(map_by_idx(2)) + 8", "18610000020000000000000008000000"),
    ("ld_pseudo r1, 4, 7", "18410000070000000000000000000000"),
    ("if r1 > r2 goto +5", "2d21050000000000"),
    ("if w1 s< 3 goto -1", "c601ffff03000000"),
    ("if r1 & 8 goto +1", "4501010008000000"),
    ("if r1 &== 8 goto +1", "4501010008000000"),
    ("goto +3", "0500030000000000"),
    ("goto +3 <foo+0x20>", "0500030000000000"),
    ("gotol +3", "0600000003000000"),
    ("may_goto +2", "e500020000000000"),
    ("call 1", "8500000001000000"),
    ("call 1; bpf_map_lookup_elem", "8500000001000000"),
    ("call pc+2", "8510000002000000"),
    ("call kfunc 7", "8520000007000000"),
    ("callx r2", "8d02000000000000"),
    ("r0 = be16 r0", "dc00000010000000"),
    ("r0 = le32 r0", "d400000020000000"),
    ("r0 = bswap64 r0", "d700000040000000"),
    ("r0 = swap16 r0", "d700000010000000"),
    ("r0 s/= r1", "3f10010000000000"),
    ("r0 s%= r1", "9f10010000000000"),
    ("w0 s/= 3", "3400010003000000"),
    ("r0 = (s8)r1", "bf10080000000000"),
    ("w0 = (s16)w1", "bc10100000000000"),
    ("r1 s32= r2", "bf21200000000000"),
    ("lock *(u64 *)(r1 + 0) += r2", "db21000000000000"),
    ("lock *(u32 *)(r1 + 0) += w2", "c321000000000000"),
    ("lock *(u32 *)(r1 + 0) += r2 fetch", "c321000001000000"),
    ("lock *(u64 *)(r1 + 8) x= r2", "db210800e1000000"),
    ("lock *(u32 *)(r1 + 0) cx= r2", "c3210000f1000000"),
    ("r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)", "db21000001000000"),
    ("w2 = atomic_fetch_or((u32 *)(r1 - 4), w2)", "c321fcff41000000"),
    ("r2 = xchg_64(r1 + 0, r2)", "db210000e1000000"),
    ("r0 = cmpxchg_64(r1 + 0, r0, r2)", "db210000f1000000"),
    ("w0 = cmpxchg32_32(r1 + 4, w0, w2)", "c3210400f1000000"),
    ("r0 = *(u16 *)skb[12]", "280000000c000000"),
    ("r0 = *(u8 *)skb[r3]", "5030000000000000"),
    ("r0 = *(u32 *)skb[r3 + 4]", "4030000004000000"),
    ("w2 = r1", "bc12000000000000"),  # PREVAIL: the destination decides the width
    ("   5:\tr1 = r2", "bf21000000000000"),  # an llvm-objdump listing line
]


@pytest.mark.parametrize(("line", "expected"), CONFORMANCE_LINES + LLVM_LINES)
def test_line_encodes_to(line: str, expected: str) -> None:
    assert asm_hex(line) == expected


def test_hex_and_decimal_immediates_are_32_bit_patterns() -> None:
    assert assemble("mov %r0, 0xffffffff") == assemble("mov %r0, -1")
    assert assemble("r0 = 4294967295") == assemble("r0 = -1")


# --- labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jne %r1, 0, skip\nmov %r0, 1\nskip:\nexit", ["5501010000000000"]),
        ("ja exit\nmov %r0, 1\nexit", ["0500010000000000"]),  # implicit label
        ("ja L\nlddw %r0, 1\nL:\nexit", ["0500020000000000"]),  # lddw takes 2 slots
        ("f:\nexit\ncall local f", [None, "85100000feffffff"]),
        ("ja32 end\nexit\nend:\nexit", ["0600000001000000"]),
        ("<start>:\nif r0 == 0 goto <out>\nr0 = 1\n<out>:\nexit", ["1500010000000000"]),
        ("call <sub>\nexit\n<sub>:\nexit", ["8510000001000000"]),
        ("back: r0 = 1\ngoto back", [None, "0500feff00000000"]),
        ("0000000000000000 <prog>:\nexit\ncall prog", [None, "85100000feffffff"]),
    ],
)
def test_labels(text: str, expected: list[str | None]) -> None:
    insns = assemble(text)
    for insn, want in zip(insns, expected, strict=False):
        if want is not None:
            assert encode([insn]).hex() == want


def test_explicit_exit_label_wins_over_implicit() -> None:
    insns = assemble("ja exit\nexit\nexit:\nexit")
    assert insns[0].off == 1


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("foo %r0", 1, "unknown instruction 'foo'"),
        ("exit\nmov %r11, 1", 2, "no such register '%r11'"),
        ("mov %r0", 1, "expected 2 operand"),
        ("mov %r0, 0x100000000", 1, "does not fit in 32 bits"),
        ("mov %r0, -2147483649", 1, "does not fit in 32 bits"),
        ("lddw %r0, 0x10000000000000000", 1, "does not fit in 64 bits"),
        ("ldxw %r0, [%r1+40000]", 1, "offset 40000 does not fit in 16 bits"),
        ("ldxw %r0, %r1", 1, "memory operand"),
        ("jeq %r1, 0, +40000", 1, "jump offset 40000"),
        ("mov %r0, 1\nja nowhere\nexit", 2, "undefined label 'nowhere'"),
        ("a:\nexit\na:\nexit", 3, "duplicate label 'a'"),
        ("mov %r0, 1\nexit\nja exit2", 3, "undefined label 'exit2'"),
        ("r11 = 1", 1, "no such register 'r11'"),
        ("r1 = -r2", 1, "negation must be of the destination"),
        ("r0 = *(u24 *)(r1 + 0)", 1, "bad access type 'u24'"),
        ("assume r0 != 0", 1, "no eBPF encoding"),
        ("if r1 ~ r2 goto +1", 1, "bad conditional jump"),
        ("lock nand [%r1], %r2", 1, "unknown atomic operation 'nand'"),
        ("lock fetch xchg [%r1], %r2", 1, "always fetches"),
        ("r2 = atomic_fetch_add((u64 *)(r1 + 0), r3)", 1, "returns into its value register"),
        ("movsx864 %r0, 5", 1, "register source"),
        ("r0 = (s8)5", 1, "takes a register"),
        ("sdiv %r0, %r1, %r2", 1, "expected 2 operand"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(AsmError) as info:
        assemble(text, where="prog.s")
    assert info.value.line == line
    assert message in str(info.value)
    assert str(info.value).startswith(f"prog.s:{line}: ")


# --- fuzzing: any text gives a program or an AsmError --------------------------

TOKENS = [
    "r0", "w1", "%r2", "r10", "r11", "=", "+=", "s>>=", "-", "+", "*", "(", ")", "[", "]",
    ",", "<", ">", "<x>", ":", "ll", "0x", "0xffffffff", "-1", "99999999999999999999",
    "32768", "u32", "s8", "skb", "if", "goto", "gotol", "call", "callx", "local", "exit",
    "lock", "fetch", "add", "add32", "mov", "lddw", "ja", "ja32", "ldxw", "stxdw", "be16",
    "map_fd", "map_val(1)", "mva(map_by_idx(0))", "atomic_fetch_add", "xchg_64",
    "cmpxchg_64", "#", ";", "pc+1", "\t", "label", "may_goto", "ld_pseudo", "movsx832",
]  # fmt: skip


def _assemble_or_error(text: str) -> None:
    try:
        result = assemble(text)
    except AsmError as e:
        assert e.line is not None
        return
    assert isinstance(result, list)
    assert decode(encode(result)) == result


@given(st.text(max_size=80))
def test_fuzz_random_text(text: str) -> None:
    _assemble_or_error(text)


@given(st.lists(st.lists(st.sampled_from(TOKENS), max_size=8).map(" ".join), max_size=6))
def test_fuzz_token_soup(lines: list[str]) -> None:
    _assemble_or_error("\n".join(lines))


@given(instructions(), st.data())
def test_fuzz_mutated_instruction_text(insn, data) -> None:
    """Near-misses of valid lines reach deep into the parsers."""
    text = data.draw(st.sampled_from([format_instruction(insn), format_conformance(insn)]))
    pos = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["delete", "insert", "replace"]))
    char = data.draw(st.sampled_from(list("0123456789rwx+-*()[]<>=,% \t;:ls")))
    if edit == "delete":
        text = text[:pos] + text[pos + 1 :]
    elif edit == "insert":
        text = text[:pos] + char + text[pos:]
    else:
        text = text[:pos] + char + text[pos + 1 :]
    _assemble_or_error(text)


# --- the shared suites ----------------------------------------------------------


def _sections(path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        m = re.match(r"--\s*(.*)$", line)
        if m:
            current = sections.setdefault(m.group(1).strip(), [])
        elif current is not None:
            current.append(line)
    return sections


@pytest.mark.parametrize("path", CONFORMANCE_FILES, ids=lambda p: p.stem)
def test_conformance_file_assembles(path: Path) -> None:
    sections = _sections(path)
    insns = assemble("\n".join(sections["asm"]), where=str(path))
    assert insns
    if "raw" in sections:
        words = [int(w.split("#")[0], 16) for w in sections["raw"] if w.strip()]
        assert encode(insns) == b"".join(w.to_bytes(8, "little") for w in words)
    assert assemble("\n".join(format_conformance(i) for i in insns)) == insns
    assert assemble("\n".join(format_instruction(i) for i in insns)) == insns


def test_conformance_suite_is_complete(shared: Path) -> None:
    assert len(CONFORMANCE_FILES) == 313


def test_prevail_yaml_code_assembles(shared: Path) -> None:
    """Every PREVAIL case assembles, except those using its `assume` directive."""
    yaml = pytest.importorskip("yaml")
    cases = failures = 0
    for path in sorted((shared / "prevail-tests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or not isinstance(doc.get("code"), dict):
                continue
            text = "\n".join(f"{label}:\n{block}" for label, block in doc["code"].items())
            if re.search(r"^\s*assume\b|&!=", text, re.MULTILINE):
                continue  # PREVAIL-only directives with no eBPF encoding
            cases += 1
            try:
                assemble(text, where=f"{path.name}: {doc.get('test-case')}")
            except AsmError as e:
                failures += 1
                print(e)
    assert cases > 500
    assert failures == 0
