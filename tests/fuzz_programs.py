"""Generators and a harness for the verifier's soundness fuzzer.

Random instruction streams are almost always rejected, so the strategies
here build XDP programs out of *plausible shapes*, as assembly text
(llvm syntax, `pybpf.isa.assemble`), each shape sometimes carrying the
mistake a developer would make:

* straight-line ALU (64- and 32-bit, division and shifts by registers) on
  registers that are mostly initialised;
* stack stores and loads around `r10 - 512 .. r10` (sometimes just outside,
  sometimes reading bytes never written);
* packet accesses guarded by `data + N > data_end` (sometimes off by one,
  sometimes with the wrong comparison), with constant and variable offsets,
  and through `data_meta`;
* map lookups with and without the NULL check, value accesses near
  `value_size`, atomics on values, updates from stack buffers;
* helper calls from the prototype table with plausible or random arguments,
  including `bpf_xdp_adjust_head/tail` (after which packet pointers are
  stale unless reloaded);
* bounded loops (backward jumps), some that never terminate, and forward
  jumps over random conditions;
* context reads and writes, some outside `struct xdp_md`.

Convention of the generated code: r6 = ctx, r7 = data, r8 = data_end (all
callee-saved, so helper calls keep them), r9 is a loop counter, r0-r5 are
scratch.

`Harness` gives the verifier (`verify_program`, the path `pybpf.load`
takes, with termination checking on) and the interpreter (real maps of
the same specs, `lddw map_fd` linked to their addresses) the same
program, and classifies the outcome. `mutate` changes instructions of a
real program (the example objects) for the mutation fuzzer.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from pybpf.elf.specs import MapSpec, ObjectSpec, ProgramSpec
from pybpf.errors import NotSupportedError, ProgramFault, PybpfError, TestRunError
from pybpf.isa import assemble
from pybpf.isa.instruction import Instruction
from pybpf.isa.opcodes import JA, LDDW, InsnClass, PseudoSrc
from pybpf.verifier.options import AnalysisOptions
from pybpf.verifier.report import Report

# -- the maps every generated program may use -----------------------------------

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2

#: map_fd index → spec; the verifier gets descriptors of these, the interpreter real maps.
FUZZ_MAPS: tuple[MapSpec, ...] = (
    MapSpec("arr", BPF_MAP_TYPE_ARRAY, 4, 16, 8),
    MapSpec("hash", BPF_MAP_TYPE_HASH, 4, 8, 16),
)
HASH_KEYS = (0, 1, 2, 3, 7)
"""Keys present in the hash map, so that some lookups succeed."""

XDP_MD_SIZE = 24
SCRATCH = ("r0", "r1", "r2", "r3", "r4", "r5")
ALU_OPS = ("+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "=", "s/=", "s%=")
JMP_OPS = ("==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&")
SIZES = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}

AVOID_KNOWN_SHAPES: set[str] = set()
"""Shapes that trigger a recorded verifier bug whose faults cannot be told apart by
message (the state after the loop is lost, so any later mistake passes); the fuzz
tests leave them out until the regression test turns green. Empty it to explore."""

#: Helpers that take no argument and return a number.
NULLARY_HELPERS = (5, 7, 8, 42, 118, 125, 160)


@dataclass
class _Gen:
    """What the generator knows while it writes one program."""

    draw: Callable[[st.SearchStrategy[Any]], Any]
    lines: list[str] = field(default_factory=list)
    init: set[str] = field(default_factory=set)  # scratch registers holding numbers
    stack: set[int] = field(default_factory=set)  # initialised stack bytes (offset from r10)
    labels: int = 0
    in_loop: bool = False
    sloppy: bool = True  # whether this program makes mistakes at all

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 999)) < p * 1000

    def oops(self, p: float) -> bool:
        """Whether to make a mistake of probability `p` (never in a careful program)."""
        return self.sloppy and self.chance(p)

    def pick(self, options: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(list(options)))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def src_reg(self) -> str:
        """A scratch register holding a number (or, rarely, any register)."""
        if self.oops(0.05):
            return self.pick((*SCRATCH, "r9", "r6", "r7"))
        if not self.init:
            reg = self.pick(SCRATCH)
            self.emit(f"{reg} = {_imm(self)}")
            self.set_num(reg)
        return self.pick(sorted(self.init))

    def dst_reg(self) -> str:
        return self.pick(SCRATCH if self.in_loop else (*SCRATCH, "r9"))

    def clobber_call(self) -> None:
        self.init -= {"r1", "r2", "r3", "r4", "r5"}
        self.init.add("r0")

    def set_num(self, reg: str) -> None:
        self.init.add(reg)

    def set_ptr(self, reg: str) -> None:
        self.init.discard(reg)


def _imm(g: _Gen) -> int:
    return g.draw(
        st.one_of(
            st.integers(-8, 64),
            st.sampled_from([-1, 0x7FFFFFFF, -0x80000000, 0xFFFF, 255, 4096]),
            st.integers(-(1 << 31), (1 << 31) - 1),
        )
    )


# -- shapes -----------------------------------------------------------------------


def _alu(g: _Gen) -> None:
    dst = g.dst_reg()
    op = g.pick(ALU_OPS)
    wide = not g.chance(0.3)
    if op != "=" and dst not in g.init and not g.oops(0.1):
        g.emit(f"{dst} = {_imm(g)}")
        g.set_num(dst)
    use_reg = g.chance(0.4)
    if op in ("<<=", ">>=", "s>>=") and not use_reg:
        src = str(g.int(0, 63 if wide else 31))
    elif use_reg:
        src = g.src_reg()
    else:
        src = str(_imm(g))
    if wide:
        g.emit(f"{dst} {op} {src}")
    else:
        w = lambda r: "w" + r[1:] if r.startswith("r") else r  # noqa: E731
        g.emit(f"{w(dst)} {op} {w(src)}")
    g.set_num(dst)


def _unop(g: _Gen) -> None:
    dst = g.pick(sorted(g.init) or ["r0"])
    form = g.pick(["-{r}", "be16 {r}", "be32 {r}", "le64 {r}", "bswap16 {r}", "(s8){r}"])
    g.emit(f"{dst} = " + form.format(r=dst))
    g.set_num(dst)


def _mov_imm(g: _Gen) -> None:
    dst = g.dst_reg()
    if g.chance(0.1):
        g.emit(f"{dst} = {g.draw(st.integers(0, (1 << 64) - 1))} ll")
    else:
        g.emit(f"{dst} = {_imm(g)}")
    g.set_num(dst)


def _stack_offset(g: _Gen, size: int) -> int:
    """A negative offset from r10, mostly aligned and inside the frame."""
    if g.oops(0.08):
        return g.pick([-513, -520, -512 - size + 1, 0, 8, -size + 1, -(size - 1) or 1])
    k = g.int(1, 512 // size) * size
    if g.oops(0.1):
        k += g.int(1, size - 1) if size > 1 else 0
        k = min(k, 512)
    return -k


def _stack_store(g: _Gen) -> None:
    size = g.pick(list(SIZES))
    off = _stack_offset(g, size)
    value = g.src_reg() if g.chance(0.7) else str(_imm(g))
    g.emit(f"{_fmt_mem(size, 'r10', off)} = {value}")
    g.stack.update(range(off, off + size))


def _fmt_mem(size: int, base: str, off: int) -> str:
    sign = "-" if off < 0 else "+"
    return f"*({SIZES[size]} *)({base} {sign} {abs(off)})"


def _stack_load(g: _Gen) -> None:
    size = g.pick(list(SIZES))
    written = sorted(
        o for o in g.stack if o % size == 0 and all(o + i in g.stack for i in range(size))
    )
    if written and not g.oops(0.15):
        off = g.pick(written)
    else:
        off = _stack_offset(g, size)
    dst = g.dst_reg()
    g.emit(f"{dst} = {_fmt_mem(size, 'r10', off)}")
    g.set_num(dst)


def _store_stack_fixed(g: _Gen) -> None:
    """Store through a pointer copied from r10 and moved (pointer arithmetic on the stack)."""
    dst = g.pick(("r1", "r2", "r3", "r4", "r5"))
    delta = g.pick([-8, -16, -64, -256, -504, -512, -520, 0, -4])
    size = g.pick(list(SIZES))
    off = g.pick([0, -8, 4, 8 - size, -size])
    g.emit(f"{dst} = r10", f"{dst} += {delta}")
    g.emit(f"{_fmt_mem(size, dst, off)} = {g.src_reg() if g.chance(0.7) else _imm(g)}")
    g.set_ptr(dst)
    if -512 <= delta + off and delta + off + size <= 0:
        g.stack.update(range(delta + off, delta + off + size))


def _guard(g: _Gen, end_reg: str, limit: str, skip: str) -> None:
    """`if end_reg > limit goto skip`, or a variant (some of them wrong)."""
    kind = g.draw(st.sampled_from(["gt", "gt", "gt", "lt", "ge", "eq", "sgt", "ne"]))
    if kind == "gt":
        g.emit(f"if {end_reg} > {limit} goto {skip}")
    elif kind == "lt":
        g.emit(f"if {limit} < {end_reg} goto {skip}")
    elif kind == "ge":
        g.emit(f"if {end_reg} >= {limit} goto {skip}")
    elif kind == "sgt":
        g.emit(f"if {end_reg} s> {limit} goto {skip}")
    elif kind == "eq":  # wrong: skips only when equal
        g.emit(f"if {end_reg} == {limit} goto {skip}")
    else:  # wrong way round
        g.emit(f"if {end_reg} <= {limit} goto {skip}")


def _packet_accesses(g: _Gen, base: str, n: int) -> None:
    for _ in range(g.int(1, 3)):
        size = g.pick([s for s in SIZES if s <= max(n, 1)] or [1])
        off = g.int(0, max(n - size, 0))
        if g.oops(0.1):
            off = g.pick([n - size + 1, n, -1, n - size + 2])
        if g.chance(0.3):
            g.emit(f"{_fmt_mem(size, base, off)} = {g.src_reg() if g.chance(0.7) else _imm(g)}")
        else:
            dst = g.pick(("r0", "r1", "r2", "r3", "r5"))
            g.emit(f"{dst} = {_fmt_mem(size, base, off)}")
            g.set_num(dst)


def _packet(g: _Gen) -> None:
    """`r4 = data + N; if r4 > data_end goto skip; access data[0..N)`."""
    n = g.draw(st.one_of(st.integers(1, 64), st.sampled_from([14, 20, 34, 42, 54])))
    skip = g.label()
    g.emit("r4 = r7", f"r4 += {n}")
    g.set_ptr("r4")
    _guard(g, "r4", "r8", skip)
    if g.oops(0.1):  # a check against a stale or wrong bound
        n += g.int(1, 8)
    _packet_accesses(g, "r7", n)
    g.emit(f"{skip}:")


def _packet_variable(g: _Gen) -> None:
    """A variable offset from a packet byte (masked, or not), then a checked access."""
    skip = g.label()
    g.emit("r4 = r7", "r4 += 1", f"if r4 > r8 goto {skip}", "r5 = *(u8 *)(r7 + 0)")
    if not g.oops(0.1):
        g.emit(f"r5 &= {g.pick([0x3F, 0xF, 0x7F, 0xFF, 0x1F])}")
    if g.oops(0.1):
        g.emit(f"r5 += {g.int(-4, 4)}")
    size = g.pick(list(SIZES))
    n = size + (g.int(-1, 1) if g.oops(0.1) else 0)
    g.emit("r4 = r7", "r4 += r5", "r1 = r4", f"r1 += {n}")
    _guard(g, "r1", "r8", skip)
    if g.chance(0.5):
        g.emit(f"r0 = {_fmt_mem(size, 'r4', 0)}")
        g.set_num("r0")
    else:
        g.emit(f"{_fmt_mem(size, 'r4', 0)} = {g.int(0, 255)}")
    g.emit(f"{skip}:")
    g.set_ptr("r4")
    g.set_ptr("r1")
    g.set_num("r5")


def _packet_meta(g: _Gen) -> None:
    """Access metadata through `data_meta`, checked against `data`."""
    skip = g.label()
    n = g.pick([1, 4, 8, 4, 16])
    g.emit("r3 = *(u32 *)(r6 + 8)", "r4 = r3", f"r4 += {n}")
    _guard(g, "r4", "r7", skip)
    _packet_accesses(g, "r3", n)
    g.emit(f"{skip}:")
    g.set_ptr("r3")
    g.set_ptr("r4")


def _ctx(g: _Gen) -> None:
    """Read (rarely write) a field of `struct xdp_md`."""
    if g.chance(0.85):
        off = g.pick([12, 16, 20, 12, 16, 0, 4, 8])
        size = 4
        if g.oops(0.1):
            off, size = g.int(0, XDP_MD_SIZE + 4), g.pick(list(SIZES))
        dst = g.pick(("r0", "r1", "r2", "r3", "r5"))
        g.emit(f"{dst} = {_fmt_mem(size, 'r6', off)}")
        if off in (0, 4, 8) and size == 4:
            g.set_ptr(dst)
        else:
            g.set_num(dst)
    else:
        off = g.pick([0, 4, 12, 16, 20, 24])
        g.emit(f"{_fmt_mem(4, 'r6', off)} = {g.src_reg()}")


def _reload_packet(g: _Gen) -> None:
    g.emit("r7 = *(u32 *)(r6 + 0)", "r8 = *(u32 *)(r6 + 4)")


def _map_key(g: _Gen, at: int = -4) -> None:
    key = g.pick([0, 1, 2, 3, 7, 5, 15, 16, 100]) if not g.oops(0.1) else _imm(g)
    g.emit(f"*(u32 *)(r10 - {-at}) = {key}")
    g.stack.update(range(at, at + 4))


def _map_lookup(g: _Gen) -> None:
    fd = g.pick(range(len(FUZZ_MAPS)))
    value_size = FUZZ_MAPS[fd].value_size
    skip = g.label()
    if not g.oops(0.05):
        _map_key(g)
    g.emit("r2 = r10", "r2 += -4" if not g.oops(0.05) else f"r2 += {g.pick([-2, -512, 0])}")
    g.emit(f"r1 = map_fd {fd}" if not g.oops(0.05) else "r1 = r6", "call 1")
    g.clobber_call()
    g.set_ptr("r0")
    checked = not g.oops(0.15)
    if checked:
        g.emit(f"if r0 {g.pick(['==', '==', '==', '!=', '<='])} 0 goto {skip}")
    for _ in range(g.int(1, 3)):
        size = g.pick([s for s in SIZES if s <= value_size])
        off = g.int(0, value_size - size)
        if g.oops(0.12):
            off = g.pick([value_size - size + 1, value_size, -1, -size])
        kind = g.int(0, 9)
        if kind < 5:
            dst = g.pick(("r1", "r2", "r3", "r5"))
            g.emit(f"{dst} = {_fmt_mem(size, 'r0', off)}")
            g.set_num(dst)
        elif kind < 8:
            g.emit(f"{_fmt_mem(size, 'r0', off)} = {g.src_reg() if g.chance(0.7) else _imm(g)}")
        else:
            size = g.pick([4, 8])
            off = g.pick([0, 8, value_size - size, value_size - size + 4])
            w = "r" if size == 8 else "w"
            src = g.pick(sorted(g.init - {"r0"}) or ["r1"])
            g.emit(f"lock {_fmt_mem(size, 'r0', off)} += {w}{src[1:]}")
    if g.oops(0.15):  # pointer arithmetic on the value
        g.emit(f"r0 += {g.pick(['r1', 'r5', '4', '8', str(value_size)])}")
        g.emit(f"r1 = {_fmt_mem(4, 'r0', 0)}")
    g.emit(f"{skip}:")
    g.set_ptr("r0")
    g.init.discard("r1")
    g.init.discard("r2")
    g.init.discard("r3")
    g.init.discard("r5")


def _map_update(g: _Gen) -> None:
    fd = g.pick(range(len(FUZZ_MAPS)))
    value_size = FUZZ_MAPS[fd].value_size
    _map_key(g)
    at = -8 - value_size if not g.oops(0.05) else -8 - value_size + 4
    if not g.oops(0.1):
        for i in range(0, value_size, 8):
            g.emit(f"*(u64 *)(r10 - {-(at + i)}) = {g.src_reg() if g.chance(0.5) else _imm(g)}")
            g.stack.update(range(at + i, at + i + 8))
    g.emit(f"r1 = map_fd {fd}", "r2 = r10", "r2 += -4", "r3 = r10", f"r3 += {at}")
    g.emit(f"r4 = {g.pick([0, 1, 2, 0, 4])}", f"call {g.pick([2, 2, 2, 3])}")
    g.clobber_call()


def _helper_simple(g: _Gen) -> None:
    g.emit(f"call {g.pick(NULLARY_HELPERS)}")
    g.clobber_call()


def _helper_mem(g: _Gen) -> None:
    """trace_printk / csum_diff with a stack buffer and a size (sometimes too big)."""
    k = g.pick([8, 16, 32, 64])
    for i in range(0, k, 8):
        if not g.oops(0.05):
            g.emit(f"*(u64 *)(r10 - {k - i}) = {g.int(0, 1 << 20)}")
            g.stack.update(range(-k + i, -k + i + 8))
    size = k if not g.oops(0.15) else g.pick([k + 1, k + 8, 0, 513])
    if g.chance(0.5):
        g.emit("r1 = r10", f"r1 += -{k}", f"r2 = {size}", "call 6")
    else:
        g.emit("r1 = r10", f"r1 += -{k}", f"r2 = {size}")
        if g.chance(0.5):
            g.emit("r3 = 0", "r4 = 0")
        else:
            g.emit("r3 = r10", f"r3 += -{k}", f"r4 = {k}")
        g.emit(f"r5 = {g.int(0, 100)}", "call 28")
    g.clobber_call()


def _helper_adjust(g: _Gen) -> None:
    """bpf_xdp_adjust_head/tail/meta; packet pointers are stale afterwards unless reloaded."""
    helper = g.pick([44, 65, 54])
    delta = g.pick([-16, -8, -1, 0, 4, 8, 14, 64]) if not g.oops(0.1) else _imm(g)
    g.emit("r1 = r6", f"r2 = {delta}", f"call {helper}")
    g.clobber_call()
    if not g.oops(0.25):
        _reload_packet(g)


def _helper_random(g: _Gen) -> None:
    """A helper of the prototype table with random (mostly wrong) arguments."""
    helper = g.pick([1, 2, 3, 6, 12, 23, 26, 28, 44, 51, 65, 87, 88, 130, 131, 165, 181])
    for reg in ("r1", "r2", "r3", "r4", "r5"):
        choice = g.int(0, 5)
        if choice == 0:
            g.emit(f"{reg} = r10", f"{reg} += -{g.pick([8, 16, 64, 512])}")
        elif choice == 1:
            g.emit(f"{reg} = r6")
        elif choice == 2:
            g.emit(f"{reg} = map_fd {g.pick(range(len(FUZZ_MAPS)))}")
        elif choice == 3:
            g.emit(f"{reg} = r7")
        else:
            g.emit(f"{reg} = {_imm(g)}")
    g.emit(f"call {helper}")
    g.clobber_call()


def _forward_jump(g: _Gen, depth: int) -> None:
    skip = g.label()
    a = g.src_reg()
    b = g.src_reg() if g.chance(0.4) else str(_imm(g))
    wide = not g.chance(0.2)
    if not wide:
        a = "w" + a[1:]
        b = "w" + b[1:] if b.startswith("r") else b
    g.emit(f"if {a} {g.pick(JMP_OPS)} {b} goto {skip}")
    before = set(g.init)
    for _ in range(g.int(1, 2)):
        _block(g, depth + 1)
    g.emit(f"{skip}:")
    g.init &= before


def _loop(g: _Gen, depth: int) -> None:
    """`r9 = 0; head: body; r9 += step; if r9 < n goto head` (sometimes never ending)."""
    head = g.label()
    n = g.int(1, 24)
    step = 1 if not g.oops(0.15) else g.pick([2, 3, 0])
    g.emit("r9 = 0", f"{head}:")
    g.in_loop = True
    before = set(g.init)
    for _ in range(g.int(1, 3)):
        _block(g, depth + 1, in_loop=True)
    if g.chance(0.3):  # index the packet with the counter
        out = g.label()
        g.emit("r4 = r7", "r4 += r9", "r1 = r4", "r1 += 1")
        _guard(g, "r1", "r8", out)
        g.emit("r0 = *(u8 *)(r4 + 0)", f"{out}:")
        g.set_ptr("r4")
        g.set_ptr("r1")
    if AVOID_KNOWN_SHAPES.isdisjoint({"loop-stack-store"}) and g.chance(0.2):
        # index the stack with the counter (see test_loop_with_variable_stack_store_*)
        g.emit("r1 = r9", "r1 <<= 3", "r2 = r10", "r2 += -256", "r2 += r1", "*(u64 *)(r2 + 0) = 1")
        g.set_ptr("r2")
        g.set_num("r1")
    g.emit(f"r9 += {step}", f"if r9 {g.pick(['<', '<', '!=', 's<', '<='])} {n} goto {head}")
    g.in_loop = False
    g.init &= before


SHAPES: tuple[tuple[Callable[..., None], int], ...] = (
    (_alu, 8),
    (_unop, 1),
    (_mov_imm, 3),
    (_stack_store, 4),
    (_stack_load, 3),
    (_store_stack_fixed, 1),
    (_packet, 5),
    (_packet_variable, 2),
    (_packet_meta, 1),
    (_ctx, 2),
    (_map_lookup, 4),
    (_map_update, 2),
    (_helper_simple, 1),
    (_helper_mem, 1),
    (_helper_adjust, 1),
    (_helper_random, 1),
)
_WEIGHTED = [shape for shape, weight in SHAPES for _ in range(weight)]


def _block(g: _Gen, depth: int = 0, in_loop: bool = False) -> None:
    choice = g.int(0, len(_WEIGHTED) + 3)
    if choice >= len(_WEIGHTED):
        if depth < 2 and choice == len(_WEIGHTED):
            return _forward_jump(g, depth)
        if depth < 1 and not in_loop and choice == len(_WEIGHTED) + 1:
            return _loop(g, depth)
        return _alu(g)
    shape = _WEIGHTED[choice]
    if in_loop and shape in (_helper_adjust, _helper_random):
        return _alu(g)
    return shape(g)


@st.composite
def xdp_programs(draw: Callable[[st.SearchStrategy[Any]], Any], max_blocks: int = 8) -> str:
    """Assembly text of one XDP program of plausible shape (see the module doc)."""
    g = _Gen(draw)
    g.sloppy = draw(st.integers(0, 9)) < 6
    g.emit("r6 = r1")
    _reload_packet(g)
    for _ in range(draw(st.integers(1, max_blocks))):
        _block(g)
    if not g.oops(0.1):
        g.emit(f"r0 = {draw(st.integers(0, 4))}")
    g.emit("exit")
    return "\n".join(g.lines) + "\n"


def _packet_bytes(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    size = draw(st.integers(14, 128))
    if draw(st.booleans()):
        return draw(st.binary(min_size=size, max_size=size))
    # Ethernet + IPv4/IPv6 + TCP/UDP/ICMP with random fields, cut to size.
    eth = draw(st.binary(min_size=12, max_size=12))
    ethertype = draw(st.sampled_from([0x0800, 0x86DD, 0x0806, 0x8100]))
    l3 = bytearray(draw(st.binary(min_size=60, max_size=60)))
    if ethertype == 0x0800:
        l3[0] = 0x45
        l3[9] = draw(st.sampled_from([6, 17, 1, 47]))
    elif ethertype == 0x86DD:
        l3[0] = 0x60
        l3[6] = draw(st.sampled_from([6, 17, 58, 0]))
    tail = draw(st.binary(min_size=60, max_size=60))
    return (eth + struct.pack("!H", ethertype) + bytes(l3) + tail)[:size]


packets = st.composite(_packet_bytes)()
"""Packets of 14..128 bytes: random bytes, or random headers of the usual protocols."""


# -- verifying and running the same program ---------------------------------------


@dataclass
class Outcome:
    """What happened to one program: the verdict, and the fault if it ran into one."""

    accepted: bool
    report: Report | None = None
    fault: BaseException | None = None
    crash: BaseException | None = None
    runs: int = 0
    skipped: int = 0


class Harness:
    """Verifies programs against `maps` and runs the accepted ones on real maps.

    `stats` counts `generated`, `accepted`, `rejected`, `runs`, `skipped`
    (a test run that refused its input or a helper pybpf does not
    implement), `faults` and `verifier_crashes`.
    """

    def __init__(
        self,
        maps: Sequence[MapSpec] = FUZZ_MAPS,
        budget: int = 200_000,
        allow_ptr_leaks: bool = True,
    ):
        from pybpf.runtime.context import ExecutionContext
        from pybpf.runtime.linux_helpers import linux_helpers
        from pybpf.runtime.maps import create_map

        self.specs = list(maps)
        self.context = ExecutionContext()
        self.helpers = linux_helpers()
        self.maps = [create_map(spec, self.context.memory) for spec in self.specs]
        for map_ in self.maps:
            self.context.add_map(map_)
        self._fill()
        self.budget = budget
        self.allow_ptr_leaks = allow_ptr_leaks
        self.stats: Counter[str] = Counter()
        self.faults: list[tuple[str, BaseException]] = []
        self.crashes: list[tuple[str, BaseException]] = []

    def _fill(self) -> None:
        for spec, map_ in zip(self.specs, self.maps, strict=True):
            if spec.type == BPF_MAP_TYPE_HASH:
                for key in HASH_KEYS:
                    map_[key.to_bytes(4, "little")] = bytes(range(spec.value_size))

    def object_spec(self, insns: Sequence[Instruction]) -> tuple[ProgramSpec, ObjectSpec]:
        prog = ProgramSpec("fuzz", "xdp", tuple(insns))
        obj = ObjectSpec("fuzz.o", {"fuzz": prog}, {spec.name: spec for spec in self.specs})
        return prog, obj

    def verify(self, insns: Sequence[Instruction]) -> Report:
        """The verdict of `verify_program` with the loader's options (`AnalysisOptions.for_load`),
        without root's allow_ptr_leaks and allow_uninit_stack if the harness was made so."""
        from pybpf.verifier.program import verify_program

        prog, obj = self.object_spec(insns)
        options = AnalysisOptions.for_load()
        # Root's two permissions go together, as in the kernel (both follow
        # bpf_capable): pointers may leak, and stack bytes never written (or
        # holding a spilled pointer) may be read.
        options.allow_ptr_leaks = self.allow_ptr_leaks
        options.allow_uninit_stack = self.allow_ptr_leaks
        return verify_program(prog, obj, prog_type="xdp", options=options)

    def link(self, insns: Sequence[Instruction]) -> list[Instruction]:
        """`lddw map_fd i` → `lddw <address of map i>`, as `Program._link` does."""
        out = []
        for insn in insns:
            if insn.opcode == LDDW and insn.src == PseudoSrc.MAP_FD and insn.imm < len(self.maps):
                insn = Instruction(LDDW, insn.dst, 0, insn.off, self.maps[insn.imm].address)
            out.append(insn)
        return out

    def check(self, source: str | Sequence[Instruction], inputs: Sequence[bytes]) -> Outcome:
        """Verify; if accepted, run on each packet. Record (not raise) faults and crashes."""
        from pybpf.engine.interpreter import Interpreter
        from pybpf.hooks.test_run import test_run
        from pybpf.platform.program_types import ProgramType

        insns = assemble(source) if isinstance(source, str) else list(source)
        text = source if isinstance(source, str) else "\n".join(map(str, insns))
        self.stats["generated"] += 1
        try:
            report = self.verify(insns)
        except Exception as e:  # noqa: BLE001 - any exception is a verifier bug
            self.stats["verifier_crashes"] += 1
            self.crashes.append((text, e))
            return Outcome(False, crash=e)
        if not report.ok:
            self.stats["rejected"] += 1
            return Outcome(False, report)
        self.stats["accepted"] += 1
        outcome = Outcome(True, report)
        engine = Interpreter(
            self.link(insns),
            helpers=self.helpers,
            memory=self.context.memory,
            runtime=self.context,
            budget=self.budget,
        )
        try:
            for data in inputs:
                try:
                    test_run(engine, ProgramType.XDP, data=data)
                except ProgramFault as e:
                    self.stats["faults"] += 1
                    self.faults.append((text, e))
                    outcome.fault = e
                    return outcome
                except (NotSupportedError, TestRunError):
                    self.stats["skipped"] += 1
                    outcome.skipped += 1
                    continue
                self.stats["runs"] += 1
                outcome.runs += 1
        finally:
            engine.close()
        return outcome

    def summary(self, title: str) -> str:
        s = self.stats
        rate = s["accepted"] / s["generated"] if s["generated"] else 0.0
        return (
            f"{title}: generated {s['generated']}, accepted {s['accepted']} ({rate:.0%}), "
            f"rejected {s['rejected']}, runs {s['runs']}, skipped runs {s['skipped']}, "
            f"faults {s['faults']}, verifier crashes {s['verifier_crashes']}"
        )


# -- mutations of real programs -----------------------------------------------------

_ALU_OPS_CODES = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xA0, 0xB0, 0xC0]
_JMP_OPS_CODES = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0]
_SIZE_CODES = [0x00, 0x08, 0x10, 0x18]  # W, H, B, DW


def _slots(insns: Sequence[Instruction]) -> list[int]:
    """Indexes of instructions a mutation may change (not the second half of nothing: all)."""
    return list(range(len(insns)))


@st.composite
def mutations(
    draw: Callable[[st.SearchStrategy[Any]], Any], insns: Sequence[Instruction]
) -> tuple[list[Instruction], list[str]]:
    """1-3 mutations of `insns` (same length: jump offsets stay meaningful); with descriptions."""
    out = list(insns)
    what: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.sampled_from(_slots(out)))
        insn = out[i]
        cls = insn.opcode & 0x07
        kind = draw(st.sampled_from(["off", "imm", "reg", "opcode", "nop", "drop_check", "size"]))
        new = insn
        if kind == "off" and cls in (InsnClass.LDX, InsnClass.STX, InsnClass.ST):
            new = replace(insn, off=insn.off + draw(st.sampled_from([-8, -4, -2, -1, 1, 2, 4, 8])))
        elif (
            kind == "imm"
            and insn.opcode != LDDW
            and cls
            in (
                InsnClass.ALU,
                InsnClass.ALU64,
                InsnClass.JMP,
                InsnClass.JMP32,
                InsnClass.ST,
            )
        ):
            if insn.opcode in (0x85, 0x95):  # call, exit: leave the helper id alone
                continue
            new = replace(
                insn,
                imm=draw(
                    st.one_of(
                        # near the old value, wrapped into the s32 an imm field holds
                        st.integers(-2, 2).map(
                            lambda d, v=insn.imm: (v + d + 2**31) % 2**32 - 2**31
                        ),
                        st.sampled_from([0, 1, -1, 0x7FFFFFFF, 14, 64, 255]),
                    )
                ),
            )
        elif kind == "reg" and insn.opcode not in (0x85, 0x95):
            if draw(st.booleans()):
                new = replace(insn, dst=draw(st.integers(0, 10)))
            else:
                new = replace(
                    insn, src=draw(st.integers(0, 10)) if insn.opcode != LDDW else insn.src
                )
        elif (
            kind == "opcode"
            and cls in (InsnClass.ALU, InsnClass.ALU64)
            and insn.opcode & 0xF0 not in (0x80, 0xD0)
        ):
            op = draw(st.sampled_from(_ALU_OPS_CODES))
            new = replace(insn, opcode=(insn.opcode & 0x0F) | op, off=0)
        elif (
            kind == "opcode"
            and cls in (InsnClass.JMP, InsnClass.JMP32)
            and insn.opcode & 0xF0 in _JMP_OPS_CODES
        ):
            new = replace(insn, opcode=(insn.opcode & 0x0F) | draw(st.sampled_from(_JMP_OPS_CODES)))
        elif (
            kind == "size"
            and cls in (InsnClass.LDX, InsnClass.STX, InsnClass.ST)
            and insn.opcode & 0xE0 in (0x60, 0x00)
        ):
            new = replace(insn, opcode=(insn.opcode & ~0x18) | draw(st.sampled_from(_SIZE_CODES)))
        elif kind == "nop" and insn.opcode != LDDW:
            new = Instruction(JA, 0, 0, 0, 0)
        elif (
            kind == "drop_check"
            and cls in (InsnClass.JMP, InsnClass.JMP32)
            and insn.opcode & 0xF0 in _JMP_OPS_CODES
        ):
            new = Instruction(JA, 0, 0, 0, 0)  # the condition never holds: fall through
        if new is not insn:
            out[i] = new
            what.append(f"pc{i}: {insn} -> {new}")
    return out, what


def is_example_runnable_type(prog_type: Any) -> bool:
    from pybpf.platform.program_types import ProgramType

    return prog_type in (
        ProgramType.XDP,
        ProgramType.SOCKET_FILTER,
        ProgramType.SCHED_CLS,
        ProgramType.SCHED_ACT,
    )


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, PybpfError) else repr(error)


class ExampleHarness:
    """The mutation fuzzer's harness: one example object, its live maps, mutated programs.

    The object is opened with `verify=False` (so the originals load as they
    are); each mutated program is verified with `verify_program` against the
    object's spec and, when accepted, linked to the live maps like any
    program of the object and run in the bounds-checked interpreter.
    """

    def __init__(self, path: str, stats: Counter[str]):
        import pybpf

        self.path = path
        self.obj = pybpf.load(path, verify=False)
        self.obj.load()
        self.stats = stats
        self.faults: list[tuple[str, str, list[str], BaseException]] = []
        self.crashes: list[tuple[str, str, list[str], BaseException]] = []

    def programs(self) -> list[str]:
        return [
            name
            for name, prog in self.obj.programs.items()
            if prog.section != ".text" and is_example_runnable_type(prog.prog_type)
        ]

    def check(
        self, name: str, insns: list[Instruction], what: list[str], inputs: Sequence[bytes]
    ) -> Outcome:
        from pybpf.engine.interpreter import Interpreter
        from pybpf.hooks.test_run import test_run
        from pybpf.program import Program
        from pybpf.verifier.program import verify_program

        original = self.obj.programs[name]
        spec = replace(original.spec, instructions=tuple(insns))
        self.stats["generated"] += 1
        try:
            report = verify_program(spec, self.obj.spec, prog_type=original.verifier_prog_type)
        except Exception as e:  # noqa: BLE001 - any exception is a verifier bug
            self.stats["verifier_crashes"] += 1
            self.crashes.append((self.path, name, what, e))
            return Outcome(False, crash=e)
        if not report.ok:
            self.stats["rejected"] += 1
            return Outcome(False, report)
        self.stats["accepted"] += 1
        outcome = Outcome(True, report)
        program = Program(self.obj, spec)
        if program.unresolved:
            program.close()
            self.stats["skipped"] += 1
            return outcome
        engine = Interpreter(
            program.instructions,
            helpers=self.obj.helpers,
            memory=self.obj.context.memory,
            runtime=self.obj.context,
            budget=200_000,
        )
        try:
            for data in inputs:
                try:
                    test_run(engine, original.prog_type, data=data)
                except ProgramFault as e:
                    self.stats["faults"] += 1
                    self.faults.append((self.path, name, what, e))
                    outcome.fault = e
                    return outcome
                except (NotSupportedError, TestRunError):
                    self.stats["skipped"] += 1
                    continue
                self.stats["runs"] += 1
        finally:
            engine.close()
            program.close()
        return outcome

    def close(self) -> None:
        self.obj.close()
