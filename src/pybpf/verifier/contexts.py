"""The context layout of each program type the verifier knows (PREVAIL's descriptors).

Apart from the analysis (`program.py`), so that asking which types the
verifier knows (`pybpf.program.verifier_prog_type`, on every load) does
not import it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..platform.contexts import StructLayout
from ..platform.program_type_info import PROGRAM_TYPES
from .options import CtxDescriptor

__all__ = ["PREVAIL_CONTEXTS", "SK_BUFF_CONTEXT", "pointer_context_descriptor"]

SK_BUFF_CONTEXT = CtxDescriptor(192, 76, 80, 140)
"""`struct __sk_buff` as PREVAIL describes it (also the default of unknown types)."""
_PTREGS = (3 + 63 + 8 + 2) * 8  # PREVAIL's cross-architecture bound on pt_regs


def _plain(size: int) -> CtxDescriptor:
    return CtxDescriptor(size, -1, -1, -1)


def pointer_context_descriptor(layout: StructLayout) -> CtxDescriptor:
    """Size and the data / data_end / data_meta offsets of an eBPF for Windows context or
    an extension's (their pointer fields are 8 bytes wide: the verifier reads them so)."""

    def at(name: str) -> int:
        return layout.field(name).offset if name in layout.pointers else -1

    return CtxDescriptor(layout.size, at("data"), at("data_end"), at("data_meta"))


#: PREVAIL program type name → its context descriptor (spec_type_descriptors.hpp).
PREVAIL_CONTEXTS: Mapping[str, CtxDescriptor] = {
    "unspec": _plain(0),
    "ext": _plain(0),
    "socket_filter": SK_BUFF_CONTEXT,
    "lxc": SK_BUFF_CONTEXT,
    "cgroup_skb": SK_BUFF_CONTEXT,
    "sched_cls": SK_BUFF_CONTEXT,
    "sched_act": SK_BUFF_CONTEXT,
    "lwt_in": SK_BUFF_CONTEXT,
    "lwt_out": SK_BUFF_CONTEXT,
    "lwt_xmit": SK_BUFF_CONTEXT,
    "lwt_seg6local": SK_BUFF_CONTEXT,
    "sk_skb": SK_BUFF_CONTEXT,
    "xdp": CtxDescriptor(24, 0, 4, 8),
    "sk_msg": CtxDescriptor(80, 0, 8, -1),
    "sk_reuseport": CtxDescriptor(56, 0, 8, -1),
    # flow_keys (offset 144) points to a struct bpf_flow_keys of 56 bytes; PREVAIL
    # has no such field and reads it as a number.
    "flow_dissector": CtxDescriptor(192, 76, 80, -1, regions=((144, 8, 56),)),
    "cgroup_device": _plain(12),
    "cgroup_sock": _plain(80),
    "kprobe": _plain(_PTREGS),
    "perf_event": _plain(3 * 8 + _PTREGS),
    "tracepoint": _plain(2048),
    "raw_tracepoint": _plain(2048),
    "raw_tracepoint_writable": _plain(2048),
    "sock_ops": _plain(224),
    "cgroup_sock_addr": _plain(72),
    "cgroup_sockopt": _plain(40),
    "sk_lookup": _plain(72),
    "cgroup_sysctl": _plain(8),
    "tracing": _plain(12 * 8),
    "struct_ops": _plain(12 * 8),
    "lsm": _plain(12 * 8),
    "lirc_mode2": _plain(4),
    "netfilter": _plain(2 * 8),
    "syscall": _plain(65535),
    # eBPF for Windows' types (its PREVAIL platform's descriptors), from the layouts.
    **{
        info.name: pointer_context_descriptor(info.context.layout)
        for info in PROGRAM_TYPES.values()
        if info.name.startswith("windows_") and info.context is not None
    },
}
