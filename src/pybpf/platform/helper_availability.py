"""Which helpers each Linux program type may call: the kernel's func_proto tables as data.

The kernel gives each program type a `get_func_proto` (net/core/filter.c
`sk_filter_func_proto`, `tc_cls_act_func_proto`, `xdp_func_proto`, …;
kernel/trace/bpf_trace.c for kprobe, tracepoint, perf_event, raw
tracepoints and tracing; most fall back on kernel/bpf/helpers.c
`bpf_base_func_proto`, which gives map, time, ring buffer, spin lock,
`bpf_loop` … to every type, and more to a `CAP_PERFMON` loader). A helper
missing from the table is refused at load: "program of this type cannot
use helper bpf_skb_load_bytes#26". Some tables depend on the expected
attach type (cgroup/connect4 may `bpf_bind`, sk_reuseport/migrate …) and
on `BPF_F_SLEEPABLE` (`bpf_copy_from_user`).

`REFUSED` is the answer of Linux 6.18 (the machine's kernel, as root), found
by loading `call N` for every helper and every (type, attach type,
sleepable) of libbpf's section table (`python -m pybpf.testing.helper_probe`;
tests/test_helper_availability.py compares it with the running kernel
where bpf() works). One record per program type: the probed kinds (attach
type name, `+sleepable`) that refuse exactly `default`, and the others
with their own list. Kinds this machine could not load (fentry/fexit,
fmod_ret, iterators, LSM, lirc, ext, struct_ops: tracing attachment is
not permitted here) are absent: `refused` answers None and the verifier
keeps its context-kind check for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from .program_types import AttachType

__all__ = ["HOST_ONLY", "REFUSED", "HelperTable", "refused"]

#: The kernel the table was probed on.
PROBED_ON = "6.18"

#: Refusals of the probed kernel (6.18.44-fc) that mainline's tables do not have:
#: `xdp_func_proto` offers bpf_xdp_adjust_meta (#54) unconditionally (see
#: tests/corpus/README.md), so pybpf keeps accepting it.
HOST_ONLY = frozenset({("xdp", 54)})


def _ids(ranges: str) -> frozenset[int]:
    out: set[int] = set()
    for part in filter(None, ranges.split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


@dataclass(frozen=True)
class HelperTable:
    """The helpers one program type is refused, by kind (`ATTACH_TYPE[+sleepable]`)."""

    kinds: tuple[str, ...]  # the probed kinds that refuse `default`
    default: str  # helper id ranges, "4,9-11,…"
    others: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _default(self) -> frozenset[int]:
        return _ids(self.default)

    def refused(self, kind: str) -> frozenset[int] | None:
        """The helper ids refused to programs of `kind` (None: a kind not probed)."""
        if kind in self.others:
            return _ids(self.others[kind])
        return self._default if kind in self.kinds else None


#: Linux program type name → its table (Linux 6.18, probed; see the module docstring).
REFUSED: Mapping[str, HelperTable] = {
    "socket_filter": HelperTable(
        ("",),
        "4,9-11,13,18-21,23-24,27-34,36,38-41,43-45,48-54,56-67,69-79,81-86,90-92,95-104,107-108,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "sk_reuseport": HelperTable(
        ("SK_REUSEPORT_SELECT_OR_MIGRATE", "SK_REUSEPORT_SELECT"),
        "4,9-11,13,18-21,23-25,27-34,36,38-41,43-45,47-54,56-67,69-79,81,83-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159,161-163,166-168,173-174,178-179,183-190,192-193,196,204-207",
    ),
    "kprobe": HelperTable(
        (
            "",
            "+sleepable",
            "TRACE_KPROBE_MULTI",
            "TRACE_KPROBE_SESSION",
            "TRACE_UPROBE_MULTI",
            "TRACE_UPROBE_SESSION",
            "TRACE_UPROBE_MULTI+sleepable",
            "TRACE_UPROBE_SESSION+sleepable",
        ),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,46-54,56-66,68-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,178-179,183-190,192-193,196,204-207",
    ),
    "sched_cls": HelperTable(
        ("TCX_INGRESS", "TCX_EGRESS", "", "NETKIT_PRIMARY", "NETKIT_PEER"),
        "4,27,36,44-45,49,51-54,56-65,67,70-78,81-82,90-92,101-104,111,116,119,121,126-129,142-147,150,159,161-162,166-168,173-174,179,183-190,193",
    ),
    "sched_act": HelperTable(
        ("",),
        "4,27,36,44-45,49,51-54,56-65,67,70-78,81-82,90-92,101-104,111,116,119,121,126-129,142-147,150,159,161-162,166-168,173-174,179,183-190,193",
    ),
    "tracepoint": HelperTable(
        ("",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,46-54,56-66,68-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,178-179,183-190,192-193,196,204-207",
    ),
    "raw_tracepoint": HelperTable(
        ("",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,46-54,56-66,68-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,178-179,183-190,192-193,196,204-207",
    ),
    "raw_tracepoint_writable": HelperTable(
        ("",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,46-54,56-66,68-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,178-179,183-190,192-193,196,204-207",
    ),
    "tracing": HelperTable(
        ("TRACE_RAW_TP",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,47-54,56-66,68-79,81-86,90-92,95-104,110,116,119,122,124,126-129,135,142-146,150-152,155,159-161,163,166-168,179,183-187,189-190,192-193,204-207",
    ),
    "syscall": HelperTable(
        ("+sleepable",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,47-54,56-66,68-79,81-86,90-92,95-104,110,116,119,122,124,126-129,135,142-146,150-152,155,159-161,163,174,183-187,189-190,192-193,204-207",
    ),
    "xdp": HelperTable(
        ("XDP_DEVMAP", "XDP_CPUMAP", "XDP"),
        "4,9-11,13,18-21,24,26-27,29-34,36,38-41,43,45-50,52-54,56-64,66-68,70-79,81-83,90-92,95-98,101-104,107-108,111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-162,166-168,173-174,179,183-187,192-193",
    ),
    "perf_event": HelperTable(
        ("",),
        "9-11,13,18-21,23-24,26,28-34,36,38-41,43-44,46-54,57-66,68-79,81-86,90-92,95-104,107-108,110-111,116,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,178-179,183-190,192-193,196,204-207",
    ),
    "lwt_in": HelperTable(
        ("",),
        "4,9-11,13,18-21,23,27,29-32,36,38,40-41,43-54,56-72,74-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "lwt_out": HelperTable(
        ("",),
        "4,9-11,13,18-21,23,27,29-32,36,38,40-41,43-54,56-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "lwt_xmit": HelperTable(
        ("",),
        "4,18-19,27,31-32,36,44-54,56-72,74-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "lwt_seg6local": HelperTable(
        ("",),
        "4,9-11,13,18-21,23,27,29-32,36,38,40-41,43-54,56-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "sock_ops": HelperTable(
        ("CGROUP_SOCK_OPS",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-52,54,56,58,60-69,71-79,82-86,90-92,95,97-104,110-111,116,119,121,124,126-129,135,145-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "sk_skb": HelperTable(
        ("SK_SKB_STREAM_PARSER", "SK_SKB_STREAM_VERDICT", "SK_SKB_VERDICT", ""),
        "4,10-11,13,18-21,23-24,27-34,36,40-41,44-45,48-49,51,53-54,56-71,73-79,81-83,90-92,95-98,100-104,107-108,110-111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "sk_msg": HelperTable(
        ("SK_MSG_VERDICT",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-54,56-59,64-70,72-79,81-86,92,95-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "flow_dissector": HelperTable(
        ("FLOW_DISSECTOR",),
        "4,9-11,13,18-21,23-25,27-34,36,38-41,43-54,56-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "cgroup_skb": HelperTable(
        ("CGROUP_INET_INGRESS", "CGROUP_INET_EGRESS", ""),
        "4,9-11,13,18-21,23-24,27-34,36,38-41,43-45,48-54,56-67,69-78,82,90-92,100-104,110-111,116,119,121,124,126-127,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "cgroup_sock": HelperTable(
        (
            "CGROUP_INET_SOCK_CREATE",
            "CGROUP_INET_SOCK_RELEASE",
            "CGROUP_INET4_POST_BIND",
            "CGROUP_INET6_POST_BIND",
        ),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-54,56-79,82-86,90-92,95-104,108,110-111,116,119,121,124,126-129,135-140,142-147,150-152,155,159,161-163,166-168,173-174,178-179,183-185,188-190,192-193,196,204-207",
    ),
    "cgroup_sock_addr": HelperTable(
        (
            "CGROUP_UDP4_RECVMSG",
            "CGROUP_UDP6_RECVMSG",
            "CGROUP_UNIX_RECVMSG",
            "CGROUP_INET4_GETPEERNAME",
            "CGROUP_INET6_GETPEERNAME",
            "CGROUP_UNIX_GETPEERNAME",
            "CGROUP_INET4_GETSOCKNAME",
            "CGROUP_INET6_GETSOCKNAME",
            "CGROUP_UNIX_GETSOCKNAME",
        ),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
        {
            "CGROUP_INET4_BIND": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_INET6_BIND": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_INET4_CONNECT": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-63,65-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_INET6_CONNECT": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-63,65-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_UNIX_CONNECT": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_UDP4_SENDMSG": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_UDP6_SENDMSG": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
            "CGROUP_UNIX_SENDMSG": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-45,47-48,50-54,56,58-79,82-83,90-92,95-98,100-104,110-111,116,119,121,124,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-185,188-190,192-193,204-207",
        },
    ),
    "cgroup_sysctl": HelperTable(
        ("CGROUP_SYSCTL",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-54,56-79,82-86,90-92,95-100,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159,161-163,166-168,173-174,178-179,183-185,188-190,192-193,196,204-207",
    ),
    "cgroup_sockopt": HelperTable(
        ("CGROUP_GETSOCKOPT",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-54,56-79,82-86,90-92,95,97-104,110-111,116,119,121,124,126-129,135-140,142-147,150-152,155,159-163,166-168,173-174,178-179,183-185,188-190,192-193,196,204-207",
        {
            "CGROUP_SETSOCKOPT": "4,9-11,13,18-21,23-24,26-34,36,38-41,43-48,50-54,56,58-79,82-86,90-92,95,97-104,110-111,116,119,121,124,126-129,135-140,142-147,150-152,155,159-163,166-168,173-174,178-179,183-185,188-190,192-193,196,204-207",
        },
    ),
    "cgroup_device": HelperTable(
        ("CGROUP_DEVICE",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-54,56-79,82-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,173-174,178-179,183-185,188-190,192-193,196,204-207",
    ),
    "sk_lookup": HelperTable(
        ("SK_LOOKUP",),
        "4,9-11,13,18-21,23-24,26-34,36,38-41,43-54,56-79,81-85,90-92,95-104,107-108,110-111,116,119,121-122,126-129,135,142-147,150-152,155,159,161-163,166-168,173-174,179,183-190,192-193,204-207",
    ),
    "netfilter": HelperTable(
        ("NETFILTER",),
        "4,9-11,13,18-21,23-34,36,38-41,43-54,56-79,81-86,90-92,95-104,107-108,110-111,116,119,121-122,124,126-129,135-140,142-147,150-152,155,159-163,166-168,173-174,178-179,183-190,192-193,196,204-207",
    ),
}


def refused(
    prog_type: str | None, attach: AttachType | None, sleepable: bool, func: int
) -> bool | None:
    """Whether Linux refuses helper `func` to such programs (None: not known here)."""
    if (prog_type, func) in HOST_ONLY:
        return False
    table = REFUSED.get(prog_type or "")
    if table is None:
        return None
    kind = (attach.name if attach is not None else "") + ("+sleepable" if sleepable else "")
    ids = table.refused(kind)
    if ids is None and sleepable:
        ids = table.refused(kind.removesuffix("+sleepable"))
    return None if ids is None else func in ids


# -- GPL-only helpers ----------------------------------------------------------------

#: Licenses the kernel calls GPL-compatible (include/linux/license.h,
#: license_is_gpl_compatible: an exact string comparison).
GPL_COMPATIBLE = frozenset(
    {
        "GPL",
        "GPL v2",
        "GPL and additional rights",
        "Dual BSD/GPL",
        "Dual MIT/GPL",
        "Dual MPL/GPL",
    }
)

#: Helpers whose func_proto is `gpl_only` in every table that offers them (Linux
#: 6.18, probed by loading `call N` with a non-GPL license for every kind of
#: libbpf's section table: "cannot call GPL-restricted function from non-GPL
#: compatible program").
GPL_ONLY = _ids(
    "4,6,22,25,27,35,45,55-56,67,69,100,110-115,119,121,158,163,165,169-173,175-177,191,204-207"
)

#: (helper, program type) → the attach types whose table has a proto that is not
#: gpl_only (None: the type's default table): bpf_get_stackid in perf_event
#: programs, bpf_get_func_ip in kprobe/uprobe multi and session programs.
_NOT_GPL_ONLY: Mapping[tuple[int, str], frozenset[AttachType | None]] = {
    (27, "perf_event"): frozenset({None}),
    (173, "kprobe"): frozenset(
        {
            AttachType.TRACE_KPROBE_MULTI,
            AttachType.TRACE_KPROBE_SESSION,
            AttachType.TRACE_UPROBE_MULTI,
            AttachType.TRACE_UPROBE_SESSION,
        }
    ),
}


def gpl_compatible(license: str) -> bool:
    """Whether the kernel lets a program with this license call GPL-only helpers."""
    return license in GPL_COMPATIBLE


def gpl_only(prog_type: str | None, attach: AttachType | None, func: int) -> bool:
    """Whether helper `func` needs a GPL-compatible license in such programs."""
    if func not in GPL_ONLY:
        return False
    return attach not in _NOT_GPL_ONLY.get((func, prog_type or ""), frozenset())
