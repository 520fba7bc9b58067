"""Linux load-path rules checked against the kernel (issue 11, item 2).

Each case is a small program, pybpf's verdict with the kernel's reason,
and, where `bpf()` works (root), the running kernel's verdict on the same
instructions (`pybpf.testing.raw_bpf`): frozen `.rodata` (no writes, values
known), misaligned stack accesses, division by an immediate zero, and the
map-type check for a register that may name one of several maps.
"""

from __future__ import annotations

import pytest

from pybpf.elf.specs import MapSpec, ObjectSpec, ProgramSpec
from pybpf.isa import assemble
from pybpf.testing import raw_bpf
from pybpf.verifier.program import verify_program

XDP = 6
KPROBE = 2
RODATA_BYTES = bytes(range(16))
RODATA = MapSpec(".rodata", 2, 4, 16, 1, initial_data=RODATA_BYTES, frozen=True)
RAW_RODATA = raw_bpf.RawMap(2, 4, 16, 1, RODATA_BYTES, frozen=True)
HASH = MapSpec("h", 1, 4, 8, 16)
RAW_HASH = raw_bpf.RawMap(1, 4, 8, 16)
RINGBUF = MapSpec("rb", 27, 0, 0, 4096)
RAW_RINGBUF = raw_bpf.RawMap(27, 0, 0, 4096)
PERF = MapSpec("events", 4, 4, 4, 4)
RAW_PERF = raw_bpf.RawMap(4, 4, 4, 4)
PROGS = MapSpec("progs", 3, 4, 4, 4)
RAW_PROGS = raw_bpf.RawMap(3, 4, 4, 4)

needs_kernel = pytest.mark.skipif(not raw_bpf.available(), reason="bpf() is not available")


def _chain(frames: int) -> str:
    """main calling a chain of functions `frames` deep."""
    calls = "call local 2\nr0 = 0\nexit\n" * (frames - 2)
    return f"call local 2\nr0 = 2\nexit\n{calls}r0 = 0\nexit"


def _loop(iterations: int) -> str:
    """A loop of 12 instructions run `iterations` times (the kernel processes 12 per round)."""
    body = "r2 = r1\n" * 10
    return f"r1 = 0\nr1 += 1\n{body}if r1 < {iterations} goto -12\nr0 = 2\nexit"


def _pybpf(source: str, section: str, maps: tuple[MapSpec, ...]):
    prog = ProgramSpec("p", section, tuple(assemble(source)))
    obj = ObjectSpec("p.o", {"p": prog}, {m.name: m for m in maps})
    return verify_program(prog, obj)


# name → (source, section, kernel prog type, maps (pybpf, kernel), words of the reason or None)
CASES = {
    "store_into_rodata": (
        "r1 = map_val(0) + 0\n*(u32 *)(r1 + 0) = 1\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        "write into map forbidden, value_size=16 off=0 size=4",
    ),
    "store_reg_into_rodata": (
        "r1 = map_val(0) + 4\nr2 = 5\n*(u64 *)(r1 + 0) = r2\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        "write into map forbidden, value_size=16 off=4 size=8",
    ),
    "atomic_into_rodata": (
        "r1 = map_val(0) + 0\nr2 = 1\nlock *(u32 *)(r1 + 0) += r2\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        "write into map forbidden",
    ),
    "store_through_rodata_lookup": (
        "r1 = map_fd 0\nr2 = r10\nr2 += -4\n*(u32 *)(r10 - 4) = 0\ncall 1\n"
        "if r0 == 0 goto +1\n*(u32 *)(r0 + 0) = 1\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        "write into map forbidden",
    ),
    "helper_writes_rodata": (
        "r1 = map_val(0) + 0\nr2 = 4\nr3 = 0\ncall 4\nr0 = 0\nexit",
        "kprobe/f",
        KPROBE,
        ((RODATA, RAW_RODATA),),
        "write into map forbidden",
    ),
    # the kernel knows the value: reading the uninitialised stack only when it is not 0x07060504
    "rodata_value_known": (
        "r1 = map_val(0) + 0\nr0 = *(u32 *)(r1 + 4)\nif r0 == 0x7060504 goto +1\n"
        "r0 = *(u64 *)(r10 - 8)\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        None,
    ),
    "rodata_value_as_stack_index": (
        "r1 = map_val(0) + 0\nr1 = *(u8 *)(r1 + 3)\nr2 = r10\nr2 += -32\nr2 += r1\n"
        "*(u8 *)(r2 + 0) = 1\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        None,
    ),
    "misaligned_stack_store": (
        "*(u32 *)(r10 - 6) = 0\nr0 = 2\nexit",
        "xdp",
        XDP,
        (),
        "misaligned stack access off 0+0+-6 size 4",
    ),
    "misaligned_stack_load": (
        "*(u64 *)(r10 - 16) = 0\n*(u64 *)(r10 - 8) = 0\nr0 = *(u16 *)(r10 - 11)\nr0 = 2\nexit",
        "xdp",
        XDP,
        (),
        "misaligned stack access off 0+0+-11 size 2",
    ),
    "misaligned_stack_pointer": (
        "r1 = r10\nr1 += -6\n*(u32 *)(r1 + 0) = 0\nr0 = 2\nexit",
        "xdp",
        XDP,
        (),
        "misaligned stack access off 0+-6+0 size 4",
    ),
    "aligned_narrow_stack_store": (
        "*(u16 *)(r10 - 6) = 0\n*(u8 *)(r10 - 7) = 0\nr0 = 2\nexit",
        "xdp",
        XDP,
        (),
        None,
    ),
    "misaligned_map_value_allowed": (
        "r1 = map_val(0) + 0\nr0 = *(u32 *)(r1 + 2)\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((RODATA, RAW_RODATA),),
        None,
    ),
    "div_by_immediate_zero": ("r0 = 1\nr0 /= 0\nexit", "xdp", XDP, (), "div by zero"),
    "mod32_by_immediate_zero": ("r0 = 1\nw0 %= 0\nexit", "xdp", XDP, (), "div by zero"),
    "sdiv_by_immediate_zero": ("r0 = 1\nr0 s/= 0\nexit", "xdp", XDP, (), "div by zero"),
    "div_by_zero_register_allowed": (
        "r0 = 1\nr1 = 0\nr0 /= r1\nr0 = 2\nexit",
        "xdp",
        XDP,
        (),
        None,
    ),
    "div_by_zero_dead_code": (
        "r0 = 2\nif r0 == 2 goto +1\nr0 /= 0\nexit",
        "xdp",
        XDP,
        (),
        None,
    ),
    # m = cond ? &progs : &hash; bpf_tail_call(ctx, m, 0)
    "tail_call_through_one_of_two_maps": (
        "r6 = r1\nr2 = map_fd 0\nr3 = *(u32 *)(r6 + 12)\nif r3 != 0 goto +2\nr2 = map_fd 1\n"
        "r1 = r6\nr3 = 0\ncall 12\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((PROGS, RAW_PROGS), (HASH, RAW_HASH)),
        ("Invalid type (r2.type == map_fd_programs)", "expected prog array map for tail call"),
    ),
    # m = cond ? &hash : &perf_events; bpf_map_lookup_elem(m, ...)
    "lookup_in_one_of_two_maps": (
        "r6 = r1\nr1 = map_fd 0\nr2 = *(u32 *)(r6 + 12)\nif r2 != 0 goto +2\nr1 = map_fd 1\n"
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\ncall 1\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((HASH, RAW_HASH), (PERF, RAW_PERF)),
        "cannot pass map_type 4 into func bpf_map_lookup_elem#1",
    ),
    "lookup_in_one_of_two_hashes": (
        "r6 = r1\nr1 = map_fd 0\nr2 = *(u32 *)(r6 + 12)\nif r2 != 0 goto +2\nr1 = map_fd 2\n"
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\ncall 1\nr0 = 2\nexit",
        "xdp",
        XDP,
        ((HASH, RAW_HASH), (RINGBUF, RAW_RINGBUF), (MapSpec("h2", 1, 4, 8, 4), RAW_HASH)),
        None,
    ),
    # -- the kernel's limits: combined stack (rounded to 16 per function), frames, instructions
    "combined_stack_512": (
        "*(u64 *)(r10 - 256) = 0\ncall local 2\nr0 = 2\nexit\n*(u64 *)(r10 - 256) = 0\nr0 = 0\nexit",
        "xdp",
        XDP,
        (),
        None,
    ),
    "combined_stack_528": (
        "*(u64 *)(r10 - 256) = 0\ncall local 2\nr0 = 2\nexit\n*(u8 *)(r10 - 257) = 0\nr0 = 0\nexit",
        "xdp",
        XDP,
        (),
        "combined stack size of 2 calls is 528. Too large",
    ),
    "combined_stack_rounded": (
        "*(u64 *)(r10 - 504) = 0\ncall local 2\nr0 = 2\nexit\n*(u8 *)(r10 - 1) = 0\nr0 = 0\nexit",
        "xdp",
        XDP,
        (),
        "combined stack size of 2 calls is 528. Too large",
    ),
    "combined_stack_callee_without_stack": (
        "*(u64 *)(r10 - 512) = 0\ncall local 2\nr0 = 2\nexit\nr0 = 0\nexit",
        "xdp",
        XDP,
        (),
        None,
    ),
    "combined_stack_helper_key": (
        "*(u64 *)(r10 - 256) = 0\ncall local 2\nr0 = 2\nexit\n*(u32 *)(r10 - 264) = 0\n"
        "r2 = r10\nr2 += -264\nr1 = map_fd 0\ncall 1\nr0 = 0\nexit",
        "xdp",
        XDP,
        ((HASH, RAW_HASH),),
        "combined stack size of 2 calls is 528. Too large",
    ),
    "eight_call_frames": (_chain(8), "xdp", XDP, (), None),
    "nine_call_frames": (_chain(9), "xdp", XDP, (), "the call stack of 9 frames is too deep"),
    # struct pt_regs is 168 bytes on x86-64: the kernel refuses reads past it (PREVAIL's
    # bound is 608, for any architecture); the load path uses the record's layout.
    "kprobe_ctx_within_pt_regs": ("r0 = *(u64 *)(r1 + 160)\nexit", "kprobe/f", KPROBE, (), None),
    "kprobe_ctx_past_pt_regs": (
        "r0 = *(u64 *)(r1 + 168)\nexit",
        "kprobe/f",
        KPROBE,
        (),
        ("Upper bound must be at most 168", "invalid bpf_context access"),
    ),
    "loop_within_instruction_limit": (_loop(80_000), "xdp", XDP, (), None),
    "loop_beyond_instruction_limit": (
        _loop(90_000),
        "xdp",
        XDP,
        (),
        ("BPF program is too large", "Argument list too long"),
    ),
}


def _words(words: str | tuple[str, str], which: int) -> str:
    # (pybpf's words, the kernel's) where the same rule is worded differently
    return words if isinstance(words, str) else words[which]


@pytest.mark.parametrize("name", CASES)
def test_pybpf_verdict(name: str) -> None:
    source, section, _, maps, words = CASES[name]
    report = _pybpf(source, section, tuple(m for m, _ in maps))
    if words is None:
        assert report.ok, report.first_failure
    else:
        assert not report.ok, "accepted"
        assert _words(words, 0) in report.first_failure.message


@needs_kernel
@pytest.mark.parametrize("name", CASES)
def test_kernel_verdict(name: str) -> None:
    source, _, prog_type, maps, words = CASES[name]
    ok, reason, _ = raw_bpf.load_verdict(assemble(source), prog_type, maps=[r for _, r in maps])
    if words is None:
        assert ok, reason
    else:
        assert not ok
        assert _words(words, 1) in reason, reason


# -- const volatile configuration in frozen .rodata, through pybpf.load ------------------------

CONFIG_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 cfg_max = 4;
const volatile __u32 cfg_index = 2;

SEC("xdp")
int config_bound(struct xdp_md *ctx)
{
    __u64 buf[8] = {};
    __u32 sum = 0;
    for (__u32 i = 0; i < cfg_max; i++)
        sum += buf[i];
    return sum ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int config_index(struct xdp_md *ctx)
{
    __u64 table[4] = {};
    table[cfg_index] = 7;
    return table[1] == 7 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int write_rodata(struct xdp_md *ctx)
{
    *(volatile __u32 *)&cfg_max = 7;
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""
PROGRAMS = ("config_bound", "config_index", "write_rodata")
# (program, values set before the load) → accepted; the kernel agrees (test below)
CONFIG_CASES = [
    ("config_bound", {}, True),
    ("config_bound", {"cfg_max": 9}, False),  # buf[8] read out of bounds
    ("config_index", {}, True),
    ("config_index", {"cfg_index": 3}, True),
    ("config_index", {"cfg_index": 4}, False),  # table[4] written out of bounds
    ("write_rodata", {}, False),
]


@pytest.fixture(scope="module")
def config_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("rodata"), "rodata_config", CONFIG_SOURCE)


@pytest.mark.parametrize(("program", "values", "accepted"), CONFIG_CASES)
def test_rodata_values_set_before_load(config_object, program, values, accepted) -> None:
    import pybpf
    from pybpf.errors import VerifierError

    with pybpf.load(str(config_object)) as obj:
        for prog in obj.programs.values():
            prog.autoload = prog.name == program
        for name, value in values.items():
            setattr(obj.rodata, name, value)
        if accepted:
            obj.load()
        else:
            with pytest.raises(VerifierError) as info:
                obj.load()
            if program == "write_rodata":
                assert "write into map forbidden" in str(info.value)


@needs_kernel
@pytest.mark.parametrize(("program", "values", "accepted"), CONFIG_CASES)
def test_rodata_values_kernel(config_object, program, values, accepted) -> None:
    from pybpf.testing.kernel import KernelError, KernelObject

    raw = {name: value.to_bytes(4, "little") for name, value in values.items()}
    autoload = {name: name == program for name in PROGRAMS}
    try:
        KernelObject(config_object, raw, autoload=autoload).close()
        kernel = True
    except KernelError:
        kernel = False
    assert kernel == accepted


@pytest.mark.parametrize(
    ("section", "prog_type", "accepted"),
    [
        ("xdp", "sched_cls", True),  # forced to tc: tc's helper table
        ("xdp", None, False),  # the section's own type: bpf_get_hash_recalc is skb-only
        ("tc", "xdp", False),
        ("tc", None, True),
    ],
)
def test_helper_table_follows_a_forced_program_type(section, prog_type, accepted) -> None:
    # bpf_get_hash_recalc (34) takes the context and exists for tc, not for XDP: the
    # helper table must be the type the program is verified as, not the section's.
    prog = ProgramSpec("p", section, tuple(assemble("call 34\nr0 = 0\nexit")), license="GPL")
    obj = ObjectSpec("p.o", {"p": prog})
    report = verify_program(prog, obj, prog_type=prog_type)
    assert report.ok == accepted, [str(f) for f in report.failures]
    if not accepted:
        assert "get_hash_recalc" in report.first_failure.message
