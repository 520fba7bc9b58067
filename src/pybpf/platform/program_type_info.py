"""One record per Linux program type: what every layer needs to know of it.

`program_type_info(t)` gives the `ProgramTypeInfo` of a `ProgramType` (or
of its lower-case name, `"sched_cls"`); the verifier, the engines, the
runtime and the hooks read these records instead of keeping tables of
their own. Section names stay in `sections.py` (libbpf's table maps a
section to a type and attach type), helper availability in
`helper_availability.py` (probed from the kernel, per type and attach
type), context layouts in `contexts.py`; the record points at them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from .contexts import (
    CGROUP_SKB_ACCESS,
    FLOW_DISSECTOR_ACCESS,
    KPROBE_ACCESS,
    PERF_EVENT_ACCESS,
    RAW_TP_ACCESS,
    RAW_TP_WRITABLE_ACCESS,
    SCHED_CLS_ACCESS,
    SK_LOOKUP_ACCESS,
    SOCK_ADDR_LINUX_ACCESS,
    SOCKET_FILTER_ACCESS,
    TRACEPOINT_ACCESS,
    XDP_ACCESS,
    ContextAccess,
)
from .extensions import RegisteredExtension, on_register
from .program_types import AttachType, ProgramType
from .windows_contexts import (
    BIND_MD_ACCESS,
    SAMPLE_CONTEXT_ACCESS,
    SOCK_ADDR_ACCESS,
    SOCK_OPS_ACCESS,
    WINDOWS_XDP_ACCESS,
)

__all__ = [
    "PacketKind",
    "ProgramTypeInfo",
    "TestRunKind",
    "context_access",
    "program_type_info",
]


class PacketKind(Enum):
    """How a program type sees packets (None in the record: it sees none)."""

    XDP = "xdp"  # struct xdp_md over an XDP frame
    SKB = "skb"  # struct __sk_buff over an sk_buff


class TestRunKind(Enum):
    """Which context a test run builds for the type (hooks/test_run.py)."""

    __test__ = False  # not a test class, whatever its name

    XDP = "xdp"
    SKB = "skb"
    FLOW_DISSECTOR = "flow_dissector"
    SK_LOOKUP = "sk_lookup"
    RAW_TRACEPOINT = "raw_tracepoint"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"
    PERF_EVENT = "perf_event"
    # The context from ctx_in (zero-padded), and the given data as the range its
    # data/data_end pointer fields bound, if it has them (eBPF for Windows' hooks:
    # bind's app id, the sample's data; extension program types).
    CONTEXT = "context"
    # eBPF for Windows' XDP: the frame in a page with headroom, as Linux's XDP test run.
    WINDOWS_XDP = "windows_xdp"


_ZERO_ONE = (0, 1)


@dataclass(frozen=True)
class ProgramTypeInfo:
    """Everything pybpf knows of one program type.

    - `ctx_struct`: the C type of the context as BTF names it (the kernel's
      bpf_types.h prog_ctx_type); a global function's pointer argument to it
      is the context. None: `void *` or a plain integer.
    - `context`: the field rules of the context (readable and writable
      fields, widths, pointer fields), shared by the verifier's load path
      and the engines; None where pybpf has no table yet.
    - `packet`, `packet_at_l2`: the program sees packets, of this kind; an
      sk_buff program sees the Ethernet header (tc) or starts at the network
      header (socket filters, cgroup_skb).
    - `packet_read_only`: direct packet access may read but not write (the
      kernel's may_access_direct_pkt_data for BPF_WRITE).
    - `ld_abs`: BPF_LD_ABS/BPF_LD_IND are allowed (may_access_skb).
    - `exit_range`, `exit_range_by_attach`: the values the entry function
      may return (check_return_code), by default and per attach type; None:
      any value.
    - `test_run`: the context a test run builds (None: pybpf cannot
      test-run the type); `linux_test_run`: whether Linux's
      BPF_PROG_TEST_RUN can run it too, so that results can be compared.
    """

    prog_type: ProgramType
    ctx_struct: str | None = None
    context: ContextAccess | None = None
    packet: PacketKind | None = None
    packet_at_l2: bool = False
    packet_read_only: bool = False
    ld_abs: bool = False
    exit_range: tuple[int, int] | None = None
    exit_range_by_attach: Mapping[AttachType, tuple[int, int]] = field(default_factory=dict)
    test_run: TestRunKind | None = None
    linux_test_run: bool = False

    @property
    def name(self) -> str:
        """The lower-case Linux name (`sched_cls`), as bpftool and the verifier spell it."""
        return self.prog_type.name.lower()

    def exit_value_range(self, attach: AttachType | None) -> tuple[int, int] | None:
        """The values the entry function may return when attached as `attach` (None: any)."""
        if attach is not None and attach in self.exit_range_by_attach:
            return self.exit_range_by_attach[attach]
        return self.exit_range


_T = ProgramType
_A = AttachType
_SKB = "__sk_buff"


def _skb_type(t: ProgramType, **kw: object) -> ProgramTypeInfo:
    return ProgramTypeInfo(t, _SKB, packet=PacketKind.SKB, **kw)  # type: ignore[arg-type]


_RECORDS = (
    ProgramTypeInfo(_T.UNSPEC),
    _skb_type(
        _T.SOCKET_FILTER,
        context=SOCKET_FILTER_ACCESS,
        ld_abs=True,
        test_run=TestRunKind.SKB,
        linux_test_run=True,
    ),
    ProgramTypeInfo(_T.KPROBE, "bpf_user_pt_regs_t", KPROBE_ACCESS, test_run=TestRunKind.KPROBE),
    *(
        _skb_type(
            t,
            context=SCHED_CLS_ACCESS,
            packet_at_l2=True,
            ld_abs=True,
            test_run=TestRunKind.SKB,
            linux_test_run=True,
        )
        for t in (_T.SCHED_CLS, _T.SCHED_ACT)
    ),
    ProgramTypeInfo(_T.TRACEPOINT, None, TRACEPOINT_ACCESS, test_run=TestRunKind.TRACEPOINT),
    ProgramTypeInfo(
        _T.XDP,
        "xdp_md",
        XDP_ACCESS,
        packet=PacketKind.XDP,
        packet_at_l2=True,
        test_run=TestRunKind.XDP,
        linux_test_run=True,
    ),
    ProgramTypeInfo(
        _T.PERF_EVENT, "bpf_perf_event_data", PERF_EVENT_ACCESS, test_run=TestRunKind.PERF_EVENT
    ),
    _skb_type(
        _T.CGROUP_SKB,
        context=CGROUP_SKB_ACCESS,
        packet_read_only=True,
        exit_range=_ZERO_ONE,
        # bit 1 of an egress verdict: congestion notification
        exit_range_by_attach={_A.CGROUP_INET_EGRESS: (0, 3)},
        test_run=TestRunKind.SKB,
        linux_test_run=True,
    ),
    ProgramTypeInfo(_T.CGROUP_SOCK, "bpf_sock", exit_range=_ZERO_ONE),
    _skb_type(_T.LWT_IN, packet_read_only=True),
    _skb_type(_T.LWT_OUT, packet_read_only=True),
    _skb_type(_T.LWT_XMIT),
    ProgramTypeInfo(_T.SOCK_OPS, "bpf_sock_ops", exit_range=_ZERO_ONE),
    _skb_type(_T.SK_SKB),
    ProgramTypeInfo(_T.CGROUP_DEVICE, "bpf_cgroup_dev_ctx", exit_range=_ZERO_ONE),
    ProgramTypeInfo(_T.SK_MSG, "sk_msg_md"),
    ProgramTypeInfo(
        _T.RAW_TRACEPOINT,
        "bpf_raw_tracepoint_args",
        RAW_TP_ACCESS,
        test_run=TestRunKind.RAW_TRACEPOINT,
        linux_test_run=True,
    ),
    ProgramTypeInfo(
        _T.CGROUP_SOCK_ADDR,
        "bpf_sock_addr",
        SOCK_ADDR_LINUX_ACCESS,
        exit_range=_ZERO_ONE,
        # Linux cannot test-run sock_addr programs; pybpf runs them on a context from
        # ctx_in (`hooks/sock_addr.py` builds one from an address).
        test_run=TestRunKind.CONTEXT,
        exit_range_by_attach={
            # bit 1 of a bind verdict: bypass the port capability check
            _A.CGROUP_INET4_BIND: (0, 3),
            _A.CGROUP_INET6_BIND: (0, 3),
            **{
                a: (1, 1)
                for a in (
                    _A.CGROUP_UDP4_RECVMSG,
                    _A.CGROUP_UDP6_RECVMSG,
                    _A.CGROUP_UNIX_RECVMSG,
                    _A.CGROUP_INET4_GETPEERNAME,
                    _A.CGROUP_INET6_GETPEERNAME,
                    _A.CGROUP_INET4_GETSOCKNAME,
                    _A.CGROUP_INET6_GETSOCKNAME,
                    _A.CGROUP_UNIX_GETPEERNAME,
                    _A.CGROUP_UNIX_GETSOCKNAME,
                )
            },
        },
    ),
    _skb_type(_T.LWT_SEG6LOCAL, packet_read_only=True),
    ProgramTypeInfo(_T.LIRC_MODE2),
    ProgramTypeInfo(
        _T.SK_REUSEPORT, "sk_reuseport_md", packet=PacketKind.SKB, packet_read_only=True
    ),
    _skb_type(
        _T.FLOW_DISSECTOR,
        context=FLOW_DISSECTOR_ACCESS,
        packet_at_l2=True,
        packet_read_only=True,
        test_run=TestRunKind.FLOW_DISSECTOR,
        linux_test_run=True,
    ),
    ProgramTypeInfo(_T.CGROUP_SYSCTL, "bpf_sysctl", exit_range=_ZERO_ONE),
    ProgramTypeInfo(
        _T.RAW_TRACEPOINT_WRITABLE,
        "bpf_raw_tracepoint_args",
        RAW_TP_WRITABLE_ACCESS,
        test_run=TestRunKind.RAW_TRACEPOINT,
    ),
    ProgramTypeInfo(_T.CGROUP_SOCKOPT, "bpf_sockopt", exit_range=_ZERO_ONE),
    ProgramTypeInfo(
        _T.TRACING, exit_range_by_attach={_A.TRACE_FENTRY: (0, 0), _A.TRACE_FEXIT: (0, 0)}
    ),
    ProgramTypeInfo(_T.STRUCT_OPS),
    ProgramTypeInfo(_T.EXT),
    ProgramTypeInfo(_T.LSM),
    ProgramTypeInfo(
        _T.SK_LOOKUP,
        "bpf_sk_lookup",
        SK_LOOKUP_ACCESS,
        exit_range=_ZERO_ONE,  # SK_DROP, SK_PASS
        test_run=TestRunKind.SK_LOOKUP,
        linux_test_run=True,
    ),
    ProgramTypeInfo(_T.SYSCALL),
    ProgramTypeInfo(_T.NETFILTER, "bpf_nf_ctx", exit_range=_ZERO_ONE),  # NF_DROP, NF_ACCEPT
    # eBPF for Windows (platform/windows.py). Its verifier checks no return range: a
    # sock_addr verdict outside REJECT..PROCEED_HARD counts as REJECT at run time.
    ProgramTypeInfo(_T.WINDOWS_XDP, "xdp_md", WINDOWS_XDP_ACCESS, test_run=TestRunKind.WINDOWS_XDP),
    ProgramTypeInfo(_T.WINDOWS_BIND, "bind_md", BIND_MD_ACCESS, test_run=TestRunKind.CONTEXT),
    ProgramTypeInfo(
        _T.WINDOWS_SOCK_ADDR, "bpf_sock_addr", SOCK_ADDR_ACCESS, test_run=TestRunKind.CONTEXT
    ),
    ProgramTypeInfo(
        _T.WINDOWS_SOCK_OPS, "bpf_sock_ops", SOCK_OPS_ACCESS, test_run=TestRunKind.CONTEXT
    ),
    ProgramTypeInfo(
        _T.WINDOWS_SAMPLE,
        "sample_program_context",
        SAMPLE_CONTEXT_ACCESS,
        test_run=TestRunKind.CONTEXT,
    ),
)

_EXTENSION_SLOTS = tuple(ProgramTypeInfo(t) for t in ProgramType if t.name.startswith("EXTENSION_"))

PROGRAM_TYPES: Mapping[ProgramType, ProgramTypeInfo] = {
    r.prog_type: r for r in (*_RECORDS, *_EXTENSION_SLOTS)
}
"""Every program type's record (an extension's once registered; an empty one before)."""

_BY_NAME = {r.name: r for r in PROGRAM_TYPES.values()}


def _install_extension(entry: RegisteredExtension) -> None:
    """The record of a registered extension type, in its slot (and by its own name)."""
    ext = entry.extension
    record = ProgramTypeInfo(
        entry.prog_type,
        ext.context.name,
        entry.access,
        exit_range=ext.return_range,
        test_run=TestRunKind.CONTEXT,
    )
    PROGRAM_TYPES[entry.prog_type] = record  # type: ignore[index]
    _BY_NAME[record.name] = _BY_NAME[ext.name] = record


on_register(_install_extension)


def program_type_info(prog_type: ProgramType | int | str) -> ProgramTypeInfo:
    """The record of `prog_type`: a `ProgramType`, its number, or its lower-case name.

    KeyError for a name that is no program type."""
    if isinstance(prog_type, str):
        return _BY_NAME[prog_type]
    return PROGRAM_TYPES[ProgramType(prog_type)]


def context_access(prog_type: ProgramType | int | str) -> ContextAccess | None:
    """The context rules of `prog_type`, or None when pybpf has none yet (or no such type)."""
    try:
        return program_type_info(prog_type).context
    except (KeyError, ValueError):
        return None
