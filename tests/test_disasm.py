"""The disassembler, against llvm-objdump-14 and llvm-mc.

llvm-objdump-14 is the reference for the text of every instruction it can
print: the program sections of real clang objects are disassembled by both
and compared line by line (raw bytes, so relocated `lddw`/`call` immediates
are the 0 / -1 the object holds). llvm-mc checks the other direction: the
text we print, assembled by LLVM, gives our bytes back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from conftest import SHARED
from pybpf.isa.assembler import assemble
from pybpf.isa.disasm import format_conformance, format_instruction, format_program
from pybpf.isa.instruction import Instruction, decode
from pybpf.isa.opcodes import (
    CALL,
    GOTOL,
    LDDW,
    MAY_GOTO,
    AluOp,
    InsnClass,
    JmpOp,
    Mode,
)
from strategies import programs


def _llvm_tool(name: str) -> str | None:
    """The version-14 tool (whose number format we match), if installed."""
    exact = shutil.which(f"{name}-14")
    if exact:
        return exact
    plain = shutil.which(name)
    if plain:
        version = subprocess.run([plain, "--version"], capture_output=True, text=True).stdout
        if "version 14." in version:
            return plain
    return None


OBJDUMP = _llvm_tool("llvm-objdump")
LLVM_MC = shutil.which("llvm-mc-14") or shutil.which("llvm-mc")
SAMPLES = SHARED / "ebpf-samples"
# Small objects that between them hold every instruction family llvm-14 prints:
# legacy packet loads, atomics, bpf-to-bpf calls, byte swaps, 32-bit jumps.
OBJECTS = [
    "linux/sockex1_kern.o",
    "suricata/lb.o",
    "suricata/filter.o",
    "build/badrelo.o",
    "linux/xdp2skb_meta_kern.o",
    "linux/tcbpf1_kern.o",
    "linux/map_perf_test_kern.o",
    "cilium-core/bpf_network.o",
    "bpf_cilium_test/bpf_netdev.o",
]

needs_objdump = pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-14 not installed")


def _objdump(path: Path) -> dict[str, dict[int, str]]:
    """llvm-objdump's text per section and pc, without ` <symbol+0x..>` suffixes."""
    out = subprocess.run(
        [OBJDUMP, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True
    ).stdout
    sections: dict[str, dict[int, str]] = {}
    current: dict[int, str] | None = None
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (.*):$", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s*(\d+):\t(.*)$", line)
        if m and current is not None:
            current[int(m.group(1))] = re.sub(r" <[^<>]*>$", "", m.group(2))
    return sections


def _program_sections(path: Path) -> dict[str, bytes]:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        return {
            s.name: s.data()
            for s in elf.iter_sections()
            if s["sh_flags"] & 0x4 and s["sh_type"] == "SHT_PROGBITS" and s.data_size
        }


def _as_llvm_prints(line: str) -> str:
    # llvm-objdump prints a bpf-to-bpf call as a plain `call -1`; we keep
    # the kind (`call pc-1`) so the text reassembles to the same bytes.
    return re.sub(r"\bcall pc([-+]\d+)", lambda m: f"call {int(m.group(1))}", line)


def _compare_object(path: Path) -> int:
    """Compare every program section of `path`; return the lines compared."""
    reference = _objdump(path)
    compared = 0
    for name, data in _program_sections(path).items():
        expected = reference.get(name, {})
        for line in format_program(decode(data, where=f"{path}:{name}")):
            pc_text, text = line.split(":\t", 1)
            want = expected.get(int(pc_text))
            if want is None or want == "<unknown>":
                continue  # an instruction llvm-14 cannot print (v4, jset, ...)
            assert _as_llvm_prints(text) == want, f"{path.name}:{name} pc {pc_text}"
            compared += 1
    return compared


@needs_objdump
@pytest.mark.parametrize("name", OBJECTS)
def test_matches_llvm_objdump(name: str) -> None:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    assert _compare_object(path) > 0


@needs_objdump
@pytest.mark.slow
def test_matches_llvm_objdump_on_every_sample(shared: Path) -> None:
    from elftools.common.exceptions import ELFError

    from pybpf.errors import DecodeError

    total = 0
    for path in sorted((shared / "ebpf-samples").rglob("*.o")):
        try:
            total += _compare_object(path)
        except (ELFError, DecodeError):
            continue  # the deliberately broken objects in invalid/
    assert total > 500_000


# --- spellings llvm-objdump-14 cannot show us --------------------------------


@pytest.mark.parametrize(
    ("insn", "text"),
    [
        (Instruction(0x45, 1, off=1, imm=8), "if r1 & 8 goto +1"),
        (Instruction(0x4E, 1, 2, off=-1), "if w1 & w2 goto -1"),
        (Instruction(0x62, 10, off=-8, imm=5), "*(u32 *)(r10 - 8) = 5"),
        (Instruction(0x7A, 1, off=2, imm=-1), "*(u64 *)(r1 + 2) = -1"),
        (Instruction(GOTOL, imm=-3), "gotol -3"),
        (Instruction(MAY_GOTO, off=4), "may_goto +4"),
        (Instruction(0xD7, 3, imm=32), "r3 = bswap32 r3"),
        (Instruction(0xBF, 1, 2, off=16), "r1 = (s16)r2"),
        (Instruction(0xBC, 1, 2, off=8), "w1 = (s8)w2"),
        (Instruction(0x3F, 1, 2, off=1), "r1 s/= r2"),
        (Instruction(0x94, 1, off=1, imm=-7), "w1 s%= -7"),
        (Instruction(0x91, 0, 10, off=-1), "r0 = *(s8 *)(r10 - 1)"),
        (Instruction(0xC3, 1, 2, imm=0x41), "w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)"),
        (Instruction(0xC3, 1, 2, off=8, imm=0xE1), "w2 = xchg32_32(r1 + 8, w2)"),
        (Instruction(0xC3, 1, 2, imm=0xF1), "w0 = cmpxchg32_32(r1 + 0, w0, w2)"),
        (Instruction(0xC3, 1, 2, imm=0x50), "lock *(u32 *)(r1 + 0) &= w2"),
        (Instruction(0xC3, 1, 2, imm=0x00), "lock *(u32 *)(r1 + 0) += r2"),
        (Instruction(0x8D, 3), "callx r3"),
        (Instruction(CALL, src=1, imm=4), "call pc+4"),
        (Instruction(CALL, src=2, imm=9), "call kfunc 9"),
        (Instruction(LDDW, 1, 1, imm=3), "r1 = map_fd 3"),
        (Instruction(LDDW, 1, 2, imm=3 | 16 << 32), "r1 = map_val(3) + 16"),
        (Instruction(LDDW, 1, 5, imm=0), "r1 = map_by_idx(0)"),
        (Instruction(LDDW, 1, 6, imm=1 | 4 << 32), "r1 = mva(map_by_idx(1)) + 4"),
        (Instruction(LDDW, 1, 4, imm=7), "ld_pseudo\tr1, 4, 7"),
        (Instruction(LDDW, 1, 1, imm=1 << 32), "ld_pseudo\tr1, 1, 4294967296"),
        (Instruction(0x40, 0, 3, imm=-2), "r0 = *(u32 *)skb[r3 - 2]"),
    ],
)
def test_spelling(insn: Instruction, text: str) -> None:
    assert format_instruction(insn) == text
    assert assemble(text) == [insn]


@pytest.mark.parametrize(
    ("insn", "text"),
    [
        (Instruction(0x61, 0, 1, off=4), "ldxw %r0, [%r1+4]"),
        (Instruction(0x7B, 10, 1, off=-8), "stxdw [%r10-8], %r1"),
        (Instruction(0x6A, 0, imm=0x1234), "sth [%r0], 4660"),
        (Instruction(0xC3, 10, 1, off=-8, imm=0x01), "lock fetch add32 [%r10-8], %r1"),
        (Instruction(0xDB, 10, 1, off=-8, imm=0xF1), "lock cmpxchg [%r10-8], %r1"),
        (Instruction(0xBC, 0, 1, off=16), "movsx1632 %r0, %r1"),
        (Instruction(0x37, 0, off=1, imm=3), "sdiv %r0, 3"),
        (Instruction(0xD7, 2, imm=64), "bswap64 %r2"),
        (Instruction(0xDC, 2, imm=16), "be16 %r2"),
        (Instruction(0x1E, 1, 2, off=3), "jeq32 %r1, %r2, +3"),
        (Instruction(CALL, src=1, imm=-5), "call local -5"),
        (Instruction(0x8D, 2), "call %r2"),
        (Instruction(LDDW, 0, imm=0x1122334455667788), "lddw %r0, 0x1122334455667788"),
        (Instruction(LDDW, 1, 1, imm=3), "r1 = map_fd 3"),
    ],
)
def test_conformance_spelling(insn: Instruction, text: str) -> None:
    assert format_conformance(insn) == text
    assert assemble(text) == [insn]


# --- format_program --------------------------------------------------------------


def test_format_program_layout() -> None:
    prog = assemble("r1 = 0 ll\nif r1 == 0 goto +1\nexit\nexit")
    assert format_program(prog, start_pc=3) == [
        "       3:\tr1 = 0 ll",
        "       5:\tif r1 == 0 goto +1",
        "       6:\texit",
        "       7:\texit",
    ]


def test_format_program_labels_and_annotations() -> None:
    prog = assemble("call pc+1\nexit\nif r1 == 0 goto -3\nexit")
    lines = format_program(
        prog,
        labels={0: "main", 2: "sub"},
        annotate=lambda pc: [f"; line {pc}"] if pc == 2 else [],
        annotate_after=lambda pc: ["\tR_BPF_64_32\tsub"] if pc == 0 else [],
    )
    assert lines == [
        "<main>:",
        "       0:\tcall pc+1 <sub>",
        "\tR_BPF_64_32\tsub",
        "       1:\texit",
        "<sub>:",
        "; line 2",
        "       2:\tif r1 == 0 goto -3 <main>",
        "       3:\texit",
    ]


# --- llvm-mc reads what we print ---------------------------------------------------


def _llvm_mc_knows(insn: Instruction) -> bool:
    """Instructions llvm-mc-14's BPF parser accepts in the text we print."""
    op = insn.opcode & 0xF0
    cls = insn.cls
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        return insn.off == 0 and insn.opcode != 0xD7 and op != AluOp.MOD  # mod: llvm 16
    if cls in (InsnClass.JMP, InsnClass.JMP32):
        if insn.opcode in (GOTOL, MAY_GOTO, 0x8D) or op == JmpOp.JSET:
            return False
        return insn.opcode != CALL or insn.src == 0
    if cls == InsnClass.LD:
        if insn.opcode == LDDW:
            return insn.src == 0  # no pseudo-load spelling in llvm-mc
        return (insn.opcode & 0xE0) != Mode.IND or insn.imm == 0  # skb[rN] only
    if cls == InsnClass.LDX:
        return (insn.opcode & 0xE0) == Mode.MEM
    if cls == InsnClass.STX:
        return (insn.opcode & 0xE0) == Mode.MEM or insn.imm in (0x00, 0x40, 0x50, 0xA0)
    return False  # store-immediate arrived in llvm 19


@pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc not installed")
@given(programs(max_size=60))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_llvm_mc_assembles_our_text_to_our_bytes(tmp_path_factory, prog) -> None:
    prog = [i for i in prog if _llvm_mc_knows(i)]
    if not prog:
        return
    work = tmp_path_factory.mktemp("mc")
    (work / "p.s").write_text("".join(format_instruction(i) + "\n" for i in prog))
    done = subprocess.run(
        [LLVM_MC, "-triple", "bpfel", "-mattr=+alu32", "-filetype=obj", "-o", "p.o", "p.s"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert decode(_program_sections(work / "p.o")[".text"]) == prog
