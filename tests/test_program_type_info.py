"""The program-type records (platform/program_type_info.py): one per type, consistent
with the context layouts, test runs and the kernel's rules they stand for."""

from __future__ import annotations

import pytest

from pybpf.errors import NotSupportedError
from pybpf.hooks.test_run import test_run
from pybpf.isa import assemble
from pybpf.platform.program_type_info import (
    PROGRAM_TYPES,
    PacketKind,
    TestRunKind,
    context_access,
    program_type_info,
)
from pybpf.platform.program_types import AttachType, ProgramType


def test_every_program_type_has_one_record_found_by_enum_number_and_name() -> None:
    assert set(PROGRAM_TYPES) == set(ProgramType)
    for t in ProgramType:
        info = program_type_info(t)
        assert info.prog_type is t
        assert program_type_info(int(t)) is info
        assert program_type_info(t.name.lower()) is info
    with pytest.raises(KeyError):
        program_type_info("no_such_type")
    assert context_access("no_such_type") is None


def test_context_tables_describe_the_struct_the_record_names() -> None:
    # The layout pybpf's engines and verifier use is the struct BTF names for the type
    # (kprobes are the exception: BTF's bpf_user_pt_regs_t is a typedef of pt_regs).
    for info in PROGRAM_TYPES.values():
        if info.context is None or info.ctx_struct is None:
            continue
        expected = "pt_regs" if info.ctx_struct == "bpf_user_pt_regs_t" else info.ctx_struct
        assert info.context.layout.name == expected, info.name


def test_packet_records_say_where_the_packet_starts() -> None:
    xdp, tc = program_type_info(ProgramType.XDP), program_type_info(ProgramType.SCHED_CLS)
    assert xdp.packet is PacketKind.XDP and xdp.packet_at_l2
    assert tc.packet is PacketKind.SKB and tc.packet_at_l2 and tc.ld_abs
    for name in ("socket_filter", "cgroup_skb"):
        info = program_type_info(name)
        assert info.packet is PacketKind.SKB and not info.packet_at_l2, name
    assert program_type_info("cgroup_skb").packet_read_only
    assert not program_type_info("sched_cls").packet_read_only
    assert not program_type_info("cgroup_skb").ld_abs


def test_exit_ranges_per_attach_type() -> None:
    skb = program_type_info("cgroup_skb")
    assert skb.exit_value_range(None) == (0, 1)
    assert skb.exit_value_range(AttachType.CGROUP_INET_INGRESS) == (0, 1)
    assert skb.exit_value_range(AttachType.CGROUP_INET_EGRESS) == (0, 3)
    addr = program_type_info("cgroup_sock_addr")
    assert addr.exit_value_range(AttachType.CGROUP_INET4_BIND) == (0, 3)
    assert addr.exit_value_range(AttachType.CGROUP_UDP4_RECVMSG) == (1, 1)
    assert addr.exit_value_range(AttachType.CGROUP_INET4_CONNECT) == (0, 1)
    assert program_type_info("xdp").exit_value_range(None) is None


def test_a_record_without_a_test_run_kind_refuses_test_runs() -> None:
    insns = assemble("r0 = 1\nexit")
    runnable = [i for i in PROGRAM_TYPES.values() if i.test_run is not None]
    assert {i.test_run for i in runnable} == set(TestRunKind)
    for info in runnable:
        assert info.context is not None, info.name
    with pytest.raises(NotSupportedError):
        test_run(insns, ProgramType.CGROUP_SOCK)
    assert test_run(insns, ProgramType.SOCKET_FILTER, data=bytes(64)).retval == 1
