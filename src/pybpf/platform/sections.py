"""ELF section names → program type and expected attach type, as libbpf reads them.

A clang object says what a program is only through the name of its section,
`SEC("xdp")`, `SEC("kprobe/sys_write")`, `SEC("cgroup/connect4")`. `SECTION_DEFS`
is libbpf's `section_defs[]` (libbpf/libbpf src/libbpf.c, commit f7081a6b)
as data, in libbpf's order, because the first matching entry wins
(`"sk_skb/stream_parser"` must be tried before `"sk_skb"`).

Each prefix is spelled the way libbpf spells it, and that spelling is the
matching rule:

* `"kprobe+"`: exactly `kprobe`, or `kprobe/<anything>`;
* `"xdp_devmap/"`: any name starting with `xdp_devmap/`;
* `"xdp"`: exactly `xdp`; with `SLOPPY_PFX`, also any name starting with
  `xdp` (`xdp1`, `xdp_prog`, `xdp/foo`), as libbpf did before 1.0
  (`SEC_SLOPPY_PFX`, dropped by "libbpf: clean up SEC() handling").

pybpf matches sloppily by default, because the objects people test (Linux
samples, prototype-kernel, Suricata, OVS) predate libbpf 1.0;
`strict=True` gives libbpf 1.x exactly.

PREVAIL's Linux platform (vbpf/prevail src/linux/linux_platform.cpp,
`get_program_type_linux`, commit b4318633) assigns types differently, and
the verdicts in prevail-tests/elf_inventory.json were computed with its
mapping, so it is kept here as data too (`PREVAIL_PROGRAM_TYPES`,
`prevail_program_type`). How the two differ:

* PREVAIL matches plain prefixes, first entry wins, and never fails: an
  unknown section is a socket filter. libbpf refuses unknown names.
* PREVAIL looks at the object's path first: a path containing "cilium" and
  "xdp" is XDP whatever the section; "cilium" and "lxc" is "lxc", a socket
  filter number with the `__sk_buff` context of sched_cls.
* `cgroup/post_bind4|6`: libbpf CGROUP_SOCK (context `bpf_sock`, as the
  kernel); PREVAIL CGROUP_SOCK_ADDR (its "cgroup/post_bind" prefix).
* Known to libbpf, a socket filter by default in PREVAIL: `tc`, `tc/…`,
  `tcx/…`, `netkit/…`, `tp/…`, `uprobe`, `uretprobe`, `usdt`, `ksyscall`,
  `kretsyscall`, `kprobe`/`kretprobe` without a slash, `kprobe.multi`-style
  names, `cgroup_skb/ingress|egress`, `lsm_cgroup/…`, `fsession…`,
  `fentry.multi…`, and the exact names `struct_ops`, `syscall`, `netfilter`,
  `sk_lookup` (PREVAIL wants `struct_ops/`, `syscall/`, `netfilter/`,
  `sk_lookup/`). (`xdp.frags…` starts with "xdp": XDP in both.)
* Prefix where libbpf 1.x is exact: `socket1`, `xdp_prog`, `sk_skb1`,
  `cgroup/sock1`, `perf_event…`, `action…` are typed by PREVAIL and by
  libbpf's old sloppy mode, not by libbpf 1.x.
* PREVAIL only: `perf_section` (PERF_EVENT) and the slash forms above; they
  are `LEGACY` entries here.
* PREVAIL has no attach types; `SectionMatch.attach_type` is libbpf's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from pybpf.platform.program_types import AttachType, ProgramType

__all__ = [
    "PREVAIL_PROGRAM_TYPES",
    "SECTION_DEFS",
    "PrevailMatch",
    "PrevailProgramType",
    "SectionDef",
    "SectionFlags",
    "SectionMatch",
    "prevail_program_type",
    "program_type_by_name",
    "program_type_for_section",
]


class SectionFlags(IntFlag):
    """Properties of a section definition (libbpf's `enum sec_def_flags`, plus two of pybpf's)."""

    NONE = 0
    #: The expected attach type is optional: a kernel that does not know it gets 0.
    EXP_ATTACH_OPT = 1
    #: Attached with `BPF_PROG_ATTACH` (libbpf keeps it only for type-name listings).
    ATTACHABLE = 2
    ATTACHABLE_OPT = ATTACHABLE | EXP_ATTACH_OPT
    #: The attach target is a BTF id (`fentry/tcp_connect` names a kernel function).
    ATTACH_BTF = 4
    #: The program may sleep (`BPF_F_SLEEPABLE` at load).
    SLEEPABLE = 8
    #: XDP program that handles multi-buffer frames (`BPF_F_XDP_HAS_FRAGS`).
    XDP_FRAGS = 16
    #: USDT probe; libbpf sets the uprobe-multi attach type when the kernel has it.
    USDT = 32
    # pybpf's own bits, kept well clear of libbpf's so that new libbpf flags fit.
    #: Any name starting with the prefix matches, as in libbpf before 1.0.
    SLOPPY_PFX = 1 << 8
    #: Not in libbpf 1.x: removed from libbpf, or known only to PREVAIL. Skipped when strict.
    LEGACY = 1 << 9


@dataclass(frozen=True, slots=True)
class SectionDef:
    """One row of the section table: a libbpf-style prefix and what it means.

    `attach_type` is the expected attach type given to the kernel at load,
    `None` where libbpf passes 0 meaning "none" (0 is also
    `AttachType.CGROUP_INET_INGRESS`, hence `None`).
    """

    prefix: str
    prog_type: ProgramType
    attach_type: AttachType | None
    flags: SectionFlags = SectionFlags.NONE

    def match_length(self, name: str, *, strict: bool = False) -> int | None:
        """How much of `name` this definition consumes, or None if it does not match.

        The rest of the name (after a `/`) is the attach target, e.g.
        `sys_write` in `kprobe/sys_write`.
        """
        prefix = self.prefix
        if strict and self.flags & SectionFlags.LEGACY:
            return None
        if prefix.endswith("/"):
            return len(prefix) if name.startswith(prefix) else None
        if prefix.endswith("+"):
            stem = prefix[:-1]
            # "kprobe+" takes "kprobe" and "kprobe/x" but not "kprobex".
            if name == stem or name.startswith(stem + "/"):
                return len(stem)
            return None
        if name == prefix:
            return len(prefix)
        if not strict and self.flags & SectionFlags.SLOPPY_PFX and name.startswith(prefix):
            return len(prefix)
        return None


@dataclass(frozen=True, slots=True)
class SectionMatch:
    """A section name resolved against `SECTION_DEFS`."""

    section: str
    definition: SectionDef
    #: What follows the matched prefix, without a leading "/": the attach
    #: target (`sys_write` for `kprobe/sys_write`), or "" when there is none.
    target: str

    @property
    def prog_type(self) -> ProgramType:
        """The program type libbpf loads this section as."""
        return self.definition.prog_type

    @property
    def attach_type(self) -> AttachType | None:
        """The expected attach type libbpf gives at load, None for none."""
        return self.definition.attach_type

    @property
    def sleepable(self) -> bool:
        """Whether libbpf loads the program with `BPF_F_SLEEPABLE`."""
        return bool(self.definition.flags & SectionFlags.SLEEPABLE)

    @property
    def legacy(self) -> bool:
        """True when only pre-1.0 libbpf or PREVAIL accept this name, not libbpf 1.x."""
        return program_type_for_section(self.section, strict=True) is None


F = SectionFlags
P = ProgramType
A = AttachType
_d = SectionDef

#: libbpf's `section_defs[]`, in its order (first match wins), plus the
#: pre-1.0 sloppy prefixes (`SLOPPY_PFX`, taken from libbpf just before
#: commit fcd1b668) and names only older libbpf or PREVAIL knew (`LEGACY`).
SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", P.SOCKET_FILTER, None, F.SLOPPY_PFX),
    _d(
        "sk_reuseport/migrate",
        P.SK_REUSEPORT,
        A.SK_REUSEPORT_SELECT_OR_MIGRATE,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("kprobe+", P.KPROBE, None, F.NONE),
    _d("uprobe+", P.KPROBE, None, F.NONE),
    _d("uprobe.s+", P.KPROBE, None, F.SLEEPABLE),
    _d("kretprobe+", P.KPROBE, None, F.NONE),
    _d("uretprobe+", P.KPROBE, None, F.NONE),
    _d("uretprobe.s+", P.KPROBE, None, F.SLEEPABLE),
    _d("kprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, F.NONE),
    _d("kretprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, F.NONE),
    _d("kprobe.session+", P.KPROBE, A.TRACE_KPROBE_SESSION, F.NONE),
    _d("uprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, F.NONE),
    _d("uretprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, F.NONE),
    _d("uprobe.session+", P.KPROBE, A.TRACE_UPROBE_SESSION, F.NONE),
    _d("uprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, F.SLEEPABLE),
    _d("uretprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, F.SLEEPABLE),
    _d("uprobe.session.s+", P.KPROBE, A.TRACE_UPROBE_SESSION, F.SLEEPABLE),
    _d("ksyscall+", P.KPROBE, None, F.NONE),
    _d("kretsyscall+", P.KPROBE, None, F.NONE),
    _d("usdt+", P.KPROBE, None, F.USDT),
    _d("usdt.s+", P.KPROBE, None, F.USDT | F.SLEEPABLE),
    _d("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, F.NONE),  # alias for tcx
    _d("tc/egress", P.SCHED_CLS, A.TCX_EGRESS, F.NONE),  # alias for tcx
    _d("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS, F.NONE),
    _d("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS, F.NONE),
    _d("tc", P.SCHED_CLS, None, F.NONE),  # deprecated / legacy, use tcx
    _d("classifier", P.SCHED_CLS, None, F.SLOPPY_PFX),  # deprecated / legacy, use tcx
    _d("action", P.SCHED_ACT, None, F.SLOPPY_PFX),  # deprecated / legacy, use tcx
    _d("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY, F.NONE),
    _d("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER, F.NONE),
    _d("tracepoint+", P.TRACEPOINT, None, F.NONE),
    _d("tp+", P.TRACEPOINT, None, F.NONE),
    _d("tracepoint.s+", P.TRACEPOINT, None, F.SLEEPABLE),
    _d("tp.s+", P.TRACEPOINT, None, F.SLEEPABLE),
    _d("raw_tracepoint+", P.RAW_TRACEPOINT, None, F.NONE),
    _d("raw_tp+", P.RAW_TRACEPOINT, None, F.NONE),
    _d("raw_tracepoint.s+", P.RAW_TRACEPOINT, None, F.SLEEPABLE),
    _d("raw_tp.s+", P.RAW_TRACEPOINT, None, F.SLEEPABLE),
    _d("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE, None, F.NONE),
    _d("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE, None, F.NONE),
    _d("tp_btf+", P.TRACING, A.TRACE_RAW_TP, F.ATTACH_BTF),
    _d("tp_btf.s+", P.TRACING, A.TRACE_RAW_TP, F.ATTACH_BTF | F.SLEEPABLE),
    _d("fentry+", P.TRACING, A.TRACE_FENTRY, F.ATTACH_BTF),
    _d("fmod_ret+", P.TRACING, A.MODIFY_RETURN, F.ATTACH_BTF),
    _d("fexit+", P.TRACING, A.TRACE_FEXIT, F.ATTACH_BTF),
    _d("fentry.s+", P.TRACING, A.TRACE_FENTRY, F.ATTACH_BTF | F.SLEEPABLE),
    _d("fmod_ret.s+", P.TRACING, A.MODIFY_RETURN, F.ATTACH_BTF | F.SLEEPABLE),
    _d("fexit.s+", P.TRACING, A.TRACE_FEXIT, F.ATTACH_BTF | F.SLEEPABLE),
    _d("fsession+", P.TRACING, A.TRACE_FSESSION, F.ATTACH_BTF),
    _d("fsession.s+", P.TRACING, A.TRACE_FSESSION, F.ATTACH_BTF | F.SLEEPABLE),
    _d("fsession.multi+", P.TRACING, A.TRACE_FSESSION_MULTI, F.NONE),
    _d("fsession.multi.s+", P.TRACING, A.TRACE_FSESSION_MULTI, F.SLEEPABLE),
    _d("fentry.multi+", P.TRACING, A.TRACE_FENTRY_MULTI, F.NONE),
    _d("fexit.multi+", P.TRACING, A.TRACE_FEXIT_MULTI, F.NONE),
    _d("fentry.multi.s+", P.TRACING, A.TRACE_FENTRY_MULTI, F.SLEEPABLE),
    _d("fexit.multi.s+", P.TRACING, A.TRACE_FEXIT_MULTI, F.SLEEPABLE),
    _d("freplace+", P.EXT, None, F.ATTACH_BTF),
    _d("lsm+", P.LSM, A.LSM_MAC, F.ATTACH_BTF),
    _d("lsm.s+", P.LSM, A.LSM_MAC, F.ATTACH_BTF | F.SLEEPABLE),
    _d("lsm_cgroup+", P.LSM, A.LSM_CGROUP, F.ATTACH_BTF),
    _d("iter+", P.TRACING, A.TRACE_ITER, F.ATTACH_BTF),
    _d("iter.s+", P.TRACING, A.TRACE_ITER, F.ATTACH_BTF | F.SLEEPABLE),
    _d("syscall", P.SYSCALL, None, F.SLEEPABLE),
    _d("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, F.XDP_FRAGS),
    _d("xdp/devmap", P.XDP, A.XDP_DEVMAP, F.ATTACHABLE),
    # Removed in libbpf 1.0 (commit fcd1b668); old objects still carry them.
    _d("xdp_devmap/", P.XDP, A.XDP_DEVMAP, F.ATTACHABLE | F.LEGACY),
    _d("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, F.XDP_FRAGS),
    _d("xdp/cpumap", P.XDP, A.XDP_CPUMAP, F.ATTACHABLE),
    _d("xdp_cpumap/", P.XDP, A.XDP_CPUMAP, F.ATTACHABLE | F.LEGACY),
    _d("xdp.frags", P.XDP, A.XDP, F.XDP_FRAGS),
    _d("xdp", P.XDP, A.XDP, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("perf_event", P.PERF_EVENT, None, F.SLOPPY_PFX),
    _d("lwt_in", P.LWT_IN, None, F.SLOPPY_PFX),
    _d("lwt_out", P.LWT_OUT, None, F.SLOPPY_PFX),
    _d("lwt_xmit", P.LWT_XMIT, None, F.SLOPPY_PFX),
    _d("lwt_seg6local", P.LWT_SEG6LOCAL, None, F.SLOPPY_PFX),
    _d("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("sk_skb/verdict", P.SK_SKB, A.SK_SKB_VERDICT, F.ATTACHABLE_OPT),
    _d("sk_skb", P.SK_SKB, None, F.SLOPPY_PFX),
    _d("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("cgroup/skb", P.CGROUP_SKB, None, F.SLOPPY_PFX),
    _d("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, F.ATTACHABLE | F.SLOPPY_PFX),
    _d(
        "cgroup/sock_release",
        P.CGROUP_SOCK,
        A.CGROUP_INET_SOCK_RELEASE,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, F.ATTACHABLE),
    _d("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG, F.ATTACHABLE),
    _d("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG, F.ATTACHABLE),
    _d(
        "cgroup/getpeername4",
        P.CGROUP_SOCK_ADDR,
        A.CGROUP_INET4_GETPEERNAME,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d(
        "cgroup/getpeername6",
        P.CGROUP_SOCK_ADDR,
        A.CGROUP_INET6_GETPEERNAME,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME, F.ATTACHABLE),
    _d(
        "cgroup/getsockname4",
        P.CGROUP_SOCK_ADDR,
        A.CGROUP_INET4_GETSOCKNAME,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d(
        "cgroup/getsockname6",
        P.CGROUP_SOCK_ADDR,
        A.CGROUP_INET6_GETSOCKNAME,
        F.ATTACHABLE | F.SLOPPY_PFX,
    ),
    _d("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME, F.ATTACHABLE),
    _d("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE, F.ATTACHABLE_OPT | F.SLOPPY_PFX),
    _d("struct_ops+", P.STRUCT_OPS, None, F.NONE),
    _d("struct_ops.s+", P.STRUCT_OPS, None, F.SLEEPABLE),
    _d("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP, F.ATTACHABLE | F.SLOPPY_PFX),
    _d("netfilter", P.NETFILTER, A.NETFILTER, F.NONE),
    # PREVAIL-only spellings (see the module docstring); libbpf never had them.
    _d("perf_section", P.PERF_EVENT, None, F.SLOPPY_PFX | F.LEGACY),
    _d("syscall/", P.SYSCALL, None, F.SLEEPABLE | F.LEGACY),
    _d("netfilter/", P.NETFILTER, A.NETFILTER, F.LEGACY),
)

del F, P, A, _d


def program_type_for_section(name: str, *, strict: bool = False) -> SectionMatch | None:
    """The program type (and expected attach type) of ELF section `name`, as libbpf decides it.

    None when the section is not a program section libbpf knows: `.text`
    (subprograms), `maps`, `license`, or a custom name such as cilium's
    `2/1` tail-call sections. `strict=True` follows libbpf 1.x, which
    insists on exact names (`xdp`, not `xdp_prog`); the default also accepts
    the prefixes older libbpf and PREVAIL accept.
    """
    for definition in SECTION_DEFS:
        length = definition.match_length(name, strict=strict)
        if length is not None:
            return SectionMatch(name, definition, name[length:].removeprefix("/"))
    return None


# --- PREVAIL's mapping ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrevailProgramType:
    """One of PREVAIL's Linux program types (`EbpfProgramType` in linux_platform.cpp).

    `name` is PREVAIL's, and it selects the context descriptor PREVAIL
    verifies against: "lxc" is numbered SOCKET_FILTER but gets sched_cls's
    `__sk_buff` layout. `privileged` types may read kernel memory.
    """

    name: str
    prog_type: ProgramType
    prefixes: tuple[str, ...]
    privileged: bool = False


def _t(
    name: str, prog_type: ProgramType, *prefixes: str, privileged: bool = False
) -> PrevailProgramType:
    return PrevailProgramType(name, prog_type, prefixes, privileged)


_P = ProgramType
_PREVAIL_SOCKET_FILTER = _t("socket_filter", _P.SOCKET_FILTER, "socket")
_PREVAIL_XDP = _t("xdp", _P.XDP, "xdp")
_PREVAIL_LXC = _t("lxc", _P.SOCKET_FILTER)

#: `linux_program_types` of PREVAIL, in its order (first prefix match wins).
PREVAIL_PROGRAM_TYPES: tuple[PrevailProgramType, ...] = (
    _t("unspec", _P.UNSPEC),
    _PREVAIL_SOCKET_FILTER,
    _PREVAIL_XDP,
    _t("cgroup_device", _P.CGROUP_DEVICE, "cgroup/dev"),
    _t("cgroup_skb", _P.CGROUP_SKB, "cgroup/skb"),
    _t("cgroup_sock", _P.CGROUP_SOCK, "cgroup/sock"),
    _t("kprobe", _P.KPROBE, "kprobe/", "kretprobe/", privileged=True),
    _t("lwt_in", _P.LWT_IN, "lwt_in"),
    _t("lwt_out", _P.LWT_OUT, "lwt_out"),
    _t("lwt_xmit", _P.LWT_XMIT, "lwt_xmit"),
    _t("perf_event", _P.PERF_EVENT, "perf_section", "perf_event"),
    _t("sched_act", _P.SCHED_ACT, "action"),
    _t("sched_cls", _P.SCHED_CLS, "classifier"),
    _t("sk_skb", _P.SK_SKB, "sk_skb"),
    _t("sock_ops", _P.SOCK_OPS, "sockops"),
    _t("tracepoint", _P.TRACEPOINT, "tracepoint/"),
    _t("cgroup_sockopt", _P.CGROUP_SOCKOPT, "cgroup/getsockopt", "cgroup/setsockopt"),
    _t("sk_msg", _P.SK_MSG, "sk_msg"),
    _t("raw_tracepoint", _P.RAW_TRACEPOINT, "raw_tracepoint/", "raw_tp/", privileged=True),
    _t(
        "raw_tracepoint_writable",
        _P.RAW_TRACEPOINT_WRITABLE,
        "raw_tracepoint.w/",
        "raw_tp.w/",
        privileged=True,
    ),
    _t(
        "cgroup_sock_addr",
        _P.CGROUP_SOCK_ADDR,
        "cgroup/bind",
        "cgroup/post_bind",
        "cgroup/connect",
        "cgroup/sendmsg",
        "cgroup/recvmsg",
        "cgroup/getpeername",
        "cgroup/getsockname",
    ),
    _t("lwt_seg6local", _P.LWT_SEG6LOCAL, "lwt_seg6local"),
    _t("lirc_mode2", _P.LIRC_MODE2, "lirc_mode2"),
    _t("sk_reuseport", _P.SK_REUSEPORT, "sk_reuseport/"),
    _t("flow_dissector", _P.FLOW_DISSECTOR, "flow_dissector"),
    _t("cgroup_sysctl", _P.CGROUP_SYSCTL, "cgroup/sysctl"),
    _t("ext", _P.EXT, "freplace/"),
    _t(
        "tracing",
        _P.TRACING,
        *("fentry/", "fentry.s/", "fexit/", "fexit.s/", "fmod_ret/", "fmod_ret.s/"),
        *("iter/", "iter.s/", "tp_btf/", "tp_btf.s/"),
    ),
    _t("struct_ops", _P.STRUCT_OPS, "struct_ops/", "struct_ops.s/"),
    _t("lsm", _P.LSM, "lsm/", "lsm.s/"),
    _t("sk_lookup", _P.SK_LOOKUP, "sk_lookup/"),
    _t("syscall", _P.SYSCALL, "syscall/"),
    _t("netfilter", _P.NETFILTER, "netfilter/"),
)

del _P


@dataclass(frozen=True, slots=True)
class PrevailMatch:
    """PREVAIL's decision for one section of one object."""

    program_type: PrevailProgramType
    #: The prefix that matched; None when PREVAIL decided from the object's
    #: path (cilium) or fell back to a socket filter.
    prefix: str | None

    @property
    def sleepable(self) -> bool:
        """PREVAIL's rule: a `.s/` prefix, or a syscall program."""
        return (
            self.prefix is not None and ".s/" in self.prefix
        ) or self.program_type.name == "syscall"


def program_type_by_name(name: str) -> ProgramType | None:
    """The program type bpftool's `type NAME` argument names, or None.

    bpftool appends "/" and asks libbpf's section table (so `xdp`, `tc`,
    `classifier`, `socket`, `cgroup/skb`, `kprobe`, `sk_lookup` …); the
    UAPI names (`sched_cls`, `socket_filter`, `cgroup_skb` …) are accepted too.
    """
    if not name:
        return None
    match = program_type_for_section(name + "/") or program_type_for_section(name)
    if match is not None:
        return match.prog_type
    try:
        prog_type = ProgramType[name.upper()]
    except KeyError:
        return None
    return None if prog_type == ProgramType.UNSPEC else prog_type


def prevail_program_type(section: str, path: str = "") -> PrevailMatch:
    """The program type PREVAIL's Linux platform gives `section` of the object at `path`.

    Mirrors `get_program_type_linux` step by step, including its reliance on
    the file name for cilium objects whose sections (`2/1`, `from-netdev`)
    say nothing. Never fails: unknown sections are socket filters.
    The path rule is PREVAIL's convention, for the sample-inventory
    comparison only: the load path never passes a path (the type of a
    program never depends on where its object file lies).
    """
    if "cilium" in path:
        if "xdp" in path:
            return PrevailMatch(_PREVAIL_XDP, None)
        if "lxc" in path:
            return PrevailMatch(_PREVAIL_LXC, None)
    for program_type in PREVAIL_PROGRAM_TYPES:
        for prefix in program_type.prefixes:
            if section.startswith(prefix):
                return PrevailMatch(program_type, prefix)
    return PrevailMatch(_PREVAIL_SOCKET_FILTER, None)
