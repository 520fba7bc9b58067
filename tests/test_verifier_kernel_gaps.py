"""Kernel rules behind the verdict corpus' last disagreements, checked against the kernel.

Each case is a small program, pybpf's verdict on the load path with the
kernel's reason, and, where `bpf()` works (root), the running kernel's
verdict on the same instructions (`pybpf.testing.raw_bpf`, with the same
license and expected attach type): unreachable instructions, shifts by an
immediate too far, GPL-only helpers from a non-GPL program, packet writes
from cgroup_skb, struct bpf_sock_addr fields per hook.
"""

from __future__ import annotations

import pytest

from pybpf.elf.specs import MapSpec, ObjectSpec, ProgramSpec
from pybpf.isa import assemble
from pybpf.platform.program_types import AttachType, ProgramType
from pybpf.testing import raw_bpf
from pybpf.verifier.program import verify_program

needs_kernel = pytest.mark.skipif(not raw_bpf.available(), reason="bpf() is not available")

XDP = ("xdp", ProgramType.XDP, None)
KPROBE = ("kprobe/f", ProgramType.KPROBE, None)
CG_EGRESS = ("cgroup_skb/egress", ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS)
CONNECT4 = ("cgroup/connect4", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT)
CONNECT6 = ("cgroup/connect6", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET6_CONNECT)
NON_GPL = "Dual MIT/BSD-ish proprietary"

_PACKET = (
    "r5 = 0\nr2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 1\nif r4 > r3 goto +1\n"
)

# name → (source, (section, type, attach), license, maps (pybpf, kernel), reason words or None)
CASES: dict[str, tuple] = {
    # check_cfg
    "unreachable_after_exit": ("r0 = 0\nexit\nr0 = 1\nexit", XDP, "GPL", (), "unreachable insn 2"),
    "unreachable_after_goto": (
        "r0 = 0\ngoto +1\nr0 = 1\nexit",
        XDP,
        "GPL",
        (),
        "unreachable insn 2",
    ),
    "reachable_by_branch": ("r0 = 0\nif r1 == 0 goto +1\nr0 = 1\nexit", XDP, "GPL", (), None),
    "unreachable_subprogram_tail": (
        "call local 2\nr0 = 2\nexit\nr0 = 0\nexit\nr0 = 1\nexit",
        XDP,
        "GPL",
        (),
        "unreachable insn 5",
    ),
    # check_alu_op
    "shift_64": ("r0 = 1\nr0 <<= 64\nexit", XDP, "GPL", (), "invalid shift 64"),
    "shift_32_alu32": ("w0 = 1\nw0 >>= 32\nr0 = 0\nexit", XDP, "GPL", (), "invalid shift 32"),
    "arsh_65": ("r0 = 1\nr0 s>>= 65\nexit", XDP, "GPL", (), "invalid shift 65"),
    "shift_63": ("r0 = 1\nr0 <<= 63\nr0 >>= 63\nexit", XDP, "GPL", (), None),
    "shift_31_alu32": ("w0 = 1\nw0 <<= 31\nr0 = 0\nexit", XDP, "GPL", (), None),
    "shift_64_dead": (
        "r0 = 0\nif r0 == 0 goto +1\nr0 <<= 64\nexit",
        XDP,
        "GPL",
        (),
        None,  # never reached: do_check never looks at it
    ),
    # check_helper_call: gpl_only protos
    "gpl_helper_non_gpl": ("call 35\nr0 = 0\nexit", KPROBE, NON_GPL, (), "GPL-restricted"),
    "gpl_helper_gpl": ("call 35\nr0 = 0\nexit", KPROBE, "GPL", (), None),
    "gpl_helper_dual": ("call 35\nr0 = 0\nexit", KPROBE, "Dual BSD/GPL", (), None),
    "plain_helper_non_gpl": ("call 7\nr0 = 0\nexit", XDP, NON_GPL, (), None),
    # may_access_direct_pkt_data
    "cgroup_skb_packet_write": (
        _PACKET + "*(u8 *)(r2 + 0) = r5\nr0 = 1\nexit",
        CG_EGRESS,
        "GPL",
        (),
        "cannot write into packet",
    ),
    "cgroup_skb_packet_read": (
        _PACKET + "r0 = *(u8 *)(r2 + 0)\nr0 = 1\nexit",
        CG_EGRESS,
        "GPL",
        (),
        None,
    ),
    # sock_addr_is_valid_access
    "connect4_write_family": (
        "r2 = 10\n*(u32 *)(r1 + 28) = r2\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        "invalid bpf_context access off=28 size=4",
    ),
    "connect4_write_user_family": (
        "r2 = 10\n*(u32 *)(r1 + 0) = r2\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        "invalid bpf_context access off=0 size=4",
    ),
    "connect4_read_user_ip6": (
        "r0 = *(u32 *)(r1 + 8)\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        "invalid bpf_context access off=8 size=4",
    ),
    "connect4_write_user_ip4_port": (
        "r2 = 1\n*(u32 *)(r1 + 4) = r2\n*(u32 *)(r1 + 24) = r2\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        None,
    ),
    "connect4_narrow_port_read": (
        "r0 = *(u16 *)(r1 + 24)\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        None,
    ),
    "connect4_narrow_family_read": (
        "r0 = *(u16 *)(r1 + 28)\nr0 = 1\nexit",
        CONNECT4,
        "GPL",
        (),
        "invalid bpf_context access off=28 size=2",
    ),
    "connect6_wide_user_ip6": (
        "r0 = *(u64 *)(r1 + 16)\nr2 = 0\n*(u64 *)(r1 + 8) = r2\nr0 = 1\nexit",
        CONNECT6,
        "GPL",
        (),
        None,
    ),
    "connect6_read_user_ip4": (
        "r0 = *(u32 *)(r1 + 4)\nr0 = 1\nexit",
        CONNECT6,
        "GPL",
        (),
        "invalid bpf_context access off=4 size=4",
    ),
}


def _pybpf(source: str, section: str, license: str, maps: tuple[MapSpec, ...]):
    prog = ProgramSpec("p", section, tuple(assemble(source)), license=license)
    obj = ObjectSpec("p.o", {"p": prog}, {m.name: m for m in maps}, license=license)
    return verify_program(prog, obj)


@pytest.mark.parametrize("name", CASES)
def test_pybpf_verdict(name: str) -> None:
    source, (section, _, _), license, maps, words = CASES[name]
    report = _pybpf(source, section, license, tuple(m for m, _ in maps))
    if words is None:
        assert report.ok, report.first_failure
    else:
        assert not report.ok, "accepted"
        assert _words(words, 0) in report.first_failure.message, report.first_failure


@needs_kernel
@pytest.mark.parametrize("name", CASES)
def test_kernel_verdict(name: str) -> None:
    source, (_, prog_type, attach), license, maps, words = CASES[name]
    ok, reason, _ = raw_bpf.load_verdict(
        assemble(source),
        int(prog_type),
        maps=[r for _, r in maps],
        attach_type=int(attach) if attach is not None else 0,
        license=license,
    )
    if words is None:
        assert ok, reason
    else:
        assert not ok
        assert _words(words, 1) in reason, reason


# -- subprogram frames, map-of-maps results, ring buffer sizes ----------------------------

ARRAY = MapSpec("a", 2, 4, 8, 4)
RAW_ARRAY = raw_bpf.RawMap(2, 4, 8, 4)
RINGBUF = MapSpec("rb", 27, 0, 0, 4096)
RAW_RINGBUF = raw_bpf.RawMap(27, 0, 0, 4096)
_RESERVE = (
    "r1 = map_fd 0\nr3 = 0\ncall 131\nif r0 == 0 goto +3\nr1 = r0\nr2 = 0\ncall 132\nr0 = 2\nexit"
)

CASES.update(
    {
        # a new frame holds r1-r5 and r10 only (check_reg_arg: "R6 !read_ok")
        "callee_reads_r6": (
            "r6 = 1\ncall local 2\nr0 = 2\nexit\nr0 = r6\nexit",
            XDP,
            "GPL",
            (),
            "R6 !read_ok",
        ),
        "callee_stores_r9": (
            "r9 = 1\ncall local 2\nr0 = 2\nexit\n*(u64 *)(r10 - 8) = r9\nr0 = 0\nexit",
            XDP,
            "GPL",
            (),
            "R9 !read_ok",
        ),
        "callee_writes_r6_first": (
            "call local 2\nr0 = 2\nexit\nr6 = 3\nr0 = r6\nexit",
            XDP,
            "GPL",
            (),
            None,
        ),
        "caller_r6_kept_across_call": (
            "r6 = 2\ncall local 2\nr0 = r6\nexit\nr6 = 3\nr0 = 0\nexit",
            XDP,
            "GPL",
            (),
            None,
        ),
        # ARG_CONST_ALLOC_SIZE_OR_ZERO: a constant
        "ringbuf_reserve_const": (
            "r2 = 16\n" + _RESERVE,
            XDP,
            "GPL",
            ((RINGBUF, RAW_RINGBUF),),
            None,
        ),
        "ringbuf_reserve_var": (
            "r2 = *(u32 *)(r1 + 12)\nr2 &= 63\nr2 += 8\n" + _RESERVE,
            XDP,
            "GPL",
            ((RINGBUF, RAW_RINGBUF),),
            "R2 is not a known constant",
        ),
    }
)

_LOOKUP = "r1 = map_fd 0\nr2 = r10\nr2 += -8\ncall 1\n"

CASES.update(
    {
        # the entry frame holds r1 and r10 only
        "entry_reads_r5": ("r0 = r5\nexit", XDP, "GPL", (), "R5 !read_ok"),
        # root: allow_ptr_leaks (a pointer returned, stored into a map) and
        # allow_uninit_stack (uninitialised bytes as a key, read as a number)
        "return_ctx_pointer": ("r0 = r1\nexit", XDP, "GPL", (), None),
        "uninit_key": (_LOOKUP + "r0 = 2\nexit", XDP, "GPL", ((ARRAY, RAW_ARRAY),), None),
        "key_above_the_stack": (
            "r1 = map_fd 0\nr2 = r10\ncall 1\nr0 = 2\nexit",
            XDP,
            "GPL",
            ((ARRAY, RAW_ARRAY),),
            ("Upper bound must be at most", "invalid"),
        ),
        "pointer_into_map": (
            "*(u32 *)(r10 - 8) = 0\n" + _LOOKUP + "if r0 == 0 goto +1\n*(u64 *)(r0 + 0) = r10\n"
            "r0 = 2\nexit",
            XDP,
            "GPL",
            ((ARRAY, RAW_ARRAY),),
            None,
        ),
        "uninit_stack_read_is_a_number": (
            "r0 = *(u64 *)(r10 - 8)\nr0 &= 1\nexit",
            XDP,
            "GPL",
            (),
            None,
        ),
        "spilled_pointer_half_read": (
            "*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 8)\nr0 &= 1\nexit",
            XDP,
            "GPL",
            (),
            "invalid size of register fill",
        ),
        "spilled_number_half_read": (
            "r1 = 7\n*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 8)\nr0 &= 1\nexit",
            XDP,
            "GPL",
            (),
            None,
        ),
        "uninit_stack_read_is_no_pointer": (
            "r0 = *(u64 *)(r10 - 8)\nr0 = *(u8 *)(r0 + 0)\nexit",
            XDP,
            "GPL",
            (),
            ("Invalid type", "invalid mem access 'scalar'"),
        ),
    }
)


def _words(words, which: int) -> str:
    return words if isinstance(words, str) else words[which]
