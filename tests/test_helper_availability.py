"""Helpers per program type (platform/helper_availability.py) against the kernel.

The table is what Linux 6.18 answered when probed; here pybpf's load path
refuses what the table refuses, and, where bpf() works, a sample of
(type, helper) pairs is loaded into the running kernel to check the table
still says what the kernel says.
"""

from __future__ import annotations

import pytest

from pybpf.elf.specs import ObjectSpec, ProgramSpec
from pybpf.isa import Instruction, assemble
from pybpf.platform.helper_availability import HOST_ONLY, REFUSED, refused
from pybpf.platform.program_types import AttachType, ProgramType
from pybpf.testing import raw_bpf
from pybpf.verifier.program import verify_program

needs_kernel = pytest.mark.skipif(not raw_bpf.available(), reason="bpf() is not available")

# (section, helper id, refused): facts of the kernel's func_proto tables
CASES = [
    ("xdp", 26, True),  # skb_load_bytes: sk_buff programs only
    ("xdp", 14, False),  # get_current_pid_tgid: bpf_base_func_proto, as root
    ("xdp", 65, False),  # xdp_adjust_tail
    ("tc", 54, True),  # xdp_adjust_meta: XDP only
    ("tc", 9, False),  # skb_store_bytes
    ("socket", 9, True),  # skb_store_bytes: not for socket filters
    ("cgroup/connect4", 64, False),  # bind: connect hooks only
    ("cgroup/bind4", 64, True),
    ("kprobe/f", 58, True),  # override_return: needs CONFIG_BPF_KPROBE_OVERRIDE, off here
    ("kprobe/f", 6, False),  # trace_printk
    ("tracepoint/a/b", 58, True),
    ("cgroup_skb/ingress", 26, False),
    ("sk_msg", 26, True),
]


def _verify(section: str, func: int):
    prog = ProgramSpec("p", section, tuple(assemble(f"call {func}\nr0 = 0\nexit")))
    return verify_program(prog, ObjectSpec("p.o", {"p": prog}, {}))


@pytest.mark.parametrize(("section", "func", "is_refused"), CASES)
def test_load_path_refuses_what_the_table_refuses(section: str, func: int, is_refused: bool):
    report = _verify(section, func)
    refusal = "program of this type cannot use helper"
    if is_refused:
        assert not report.ok and refusal in report.first_failure.message
    else:
        assert report.ok or refusal not in report.first_failure.message


def test_table_lookups() -> None:
    assert refused("xdp", AttachType.XDP, False, 26) is True
    assert refused("xdp", AttachType.XDP, False, 54) is False  # HOST_ONLY
    assert refused("tracing", AttachType.TRACE_FENTRY, False, 183) is None  # not probed
    assert refused("nonsense", None, False, 1) is None
    assert len(REFUSED) >= 25


_KERNEL = [
    ("xdp", ProgramType.XDP, AttachType.XDP),
    ("sched_cls", ProgramType.SCHED_CLS, None),
    ("socket_filter", ProgramType.SOCKET_FILTER, None),
    ("kprobe", ProgramType.KPROBE, None),
    ("cgroup_sock_addr", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT),
    ("cgroup_skb", ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS),
]


@needs_kernel
@pytest.mark.parametrize(("name", "prog_type", "attach"), _KERNEL, ids=[k[0] for k in _KERNEL])
def test_table_matches_running_kernel(name: str, prog_type: ProgramType, attach) -> None:
    wrong = []
    for func in range(1, 212, 3):
        expected = refused(name, attach, False, func)
        if expected is None or (name, func) in HOST_ONLY:
            continue
        code = [Instruction(0x85, imm=func), Instruction(0xB7, imm=1), Instruction(0x95)]
        _, _, log = raw_bpf.load_verdict(
            code, int(prog_type), attach_type=int(attach) if attach is not None else 0
        )
        if ("program of this type cannot use helper" in log) != expected:
            wrong.append(func)
    assert not wrong, f"the kernel disagrees with the table on helpers {wrong}"
