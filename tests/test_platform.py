"""Tests of platform/'s tables: program types, attach types, helper ids, section names.

The enums are checked against the kernel UAPI header installed on the
machine, so a typo or a missed renumbering fails here, not in a verifier
report weeks later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pybpf.platform import (
    SECTION_DEFS,
    AttachType,
    HelperId,
    ProgramType,
    SectionFlags,
    helper_name,
    prevail_program_type,
    program_type_for_section,
)

BPF_H = Path("/usr/include/linux/bpf.h")


# --- the UAPI header --------------------------------------------------------------


def _header() -> str:
    if not BPF_H.is_file():
        pytest.skip(f"{BPF_H} not installed (linux-libc-dev)")
    return BPF_H.read_text()


def _parse_enum(text: str, enum: str) -> dict[str, int]:
    """Members of C `enum <enum> { … }`, with implicit values counted, sentinels dropped."""
    match = re.search(rf"enum {enum} \{{(.*?)\}};", text, re.S)
    assert match, f"enum {enum} not found in {BPF_H}"
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)
    members: dict[str, int] = {}
    value = 0
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, explicit = (part.strip() for part in item.partition("="))
        if explicit:
            value = int(explicit, 0)
        # __MAX_BPF_PROG_TYPE and friends count members; they are not members.
        if not name.startswith("__"):
            members[name] = value
        value += 1
    return members


def _parse_helpers(text: str) -> dict[str, int]:
    """Helper name → id from the FN(...) mapper list.

    Older headers (6.1, as installed here) write `FN(name)` and number by
    position; newer ones write `FN(name, id, ##ctx)`. Both are understood.
    """
    match = re.search(r"#define (?:___|__)BPF_FUNC_MAPPER\(FN.*?\)\s*\\\n(.*?)\n\s*/\*", text, re.S)
    assert match, f"BPF_FUNC_MAPPER not found in {BPF_H}"
    helpers: dict[str, int] = {}
    for position, call in enumerate(re.finditer(r"FN\((\w+)(?:,\s*(\d+))?", match.group(1))):
        name, explicit = call.groups()
        helpers[name] = int(explicit) if explicit else position
    return helpers


def _check_against_header(ours: type, theirs: dict[str, int], c_name) -> None:
    """Every header member is ours with the same value; ours beyond it are newer."""
    assert theirs, "nothing parsed from the header"
    by_c_name = {c_name(member): member for member in ours}
    for name, value in theirs.items():
        assert name in by_c_name, f"{name} (= {value}) in {BPF_H} but not in {ours.__name__}"
        assert by_c_name[name] == value, f"{name}: {by_c_name[name]:d} here, {value} in {BPF_H}"
    # Members the installed header lacks must come from a newer kernel,
    # i.e. be numbered after everything it has, never fill a gap.
    newest = max(theirs.values())
    for member in ours:
        if c_name(member) not in theirs:
            assert member > newest, f"{member!r} is unknown to {BPF_H} yet numbered inside it"


def test_program_types_match_bpf_h() -> None:
    _check_against_header(ProgramType, _parse_enum(_header(), "bpf_prog_type"), lambda m: m.c_name)


def test_attach_types_match_bpf_h() -> None:
    _check_against_header(AttachType, _parse_enum(_header(), "bpf_attach_type"), lambda m: m.c_name)


def test_helper_ids_match_bpf_h() -> None:
    helpers = _parse_helpers(_header())
    assert helpers["map_lookup_elem"] == 1  # the parser found the real list
    _check_against_header(HelperId, helpers, lambda m: m.name.lower())


def test_enums_are_dense() -> None:
    # The kernel numbers these enums without gaps; a gap here means a member was dropped.
    for enum in (ProgramType, AttachType, HelperId):
        linux = [int(m) for m in enum if not m.name.startswith(("WINDOWS_", "EXTENSION_"))]
        assert linux == list(range(len(linux))), enum.__name__
    # eBPF for Windows' program types are numbered past Linux's, never among them.
    windows = [int(m) for m in ProgramType if m.name.startswith("WINDOWS_")]
    assert len(windows) == 5 and min(windows) > 0xFFFF


@pytest.mark.parametrize(
    ("helper_id", "name"),
    [
        (1, "bpf_map_lookup_elem"),
        (2, "bpf_map_update_elem"),
        (HelperId.TAIL_CALL, "bpf_tail_call"),
        (130, "bpf_ringbuf_output"),
        (211, "bpf_cgrp_storage_delete"),
        (212, "unknown helper 212"),
        (-1, "unknown helper -1"),
    ],
)
def test_helper_name(helper_id: int, name: str) -> None:
    assert helper_name(helper_id) == name


def test_c_names() -> None:
    assert ProgramType.XDP.c_name == "BPF_PROG_TYPE_XDP"
    assert AttachType.CGROUP_INET4_CONNECT.c_name == "BPF_CGROUP_INET4_CONNECT"
    assert HelperId.MAP_LOOKUP_ELEM.c_name == "bpf_map_lookup_elem"


# --- section names ----------------------------------------------------------------

P = ProgramType
A = AttachType


@pytest.mark.parametrize(
    ("section", "prog_type", "attach_type", "target"),
    [
        ("xdp", P.XDP, A.XDP, ""),
        ("xdp/foo", P.XDP, A.XDP, "foo"),
        ("xdp_prog", P.XDP, A.XDP, "_prog"),
        ("xdp.frags", P.XDP, A.XDP, ""),
        ("xdp/devmap", P.XDP, A.XDP_DEVMAP, ""),
        ("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, ""),
        ("xdp_devmap/fwd", P.XDP, A.XDP_DEVMAP, "fwd"),
        ("tc", P.SCHED_CLS, None, ""),
        ("classifier", P.SCHED_CLS, None, ""),
        ("classifier/egress", P.SCHED_CLS, None, "egress"),
        ("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, ""),
        ("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS, ""),
        ("action", P.SCHED_ACT, None, ""),
        ("socket", P.SOCKET_FILTER, None, ""),
        ("socket/1", P.SOCKET_FILTER, None, "1"),
        ("socket1", P.SOCKET_FILTER, None, "1"),
        ("kprobe/sys_write", P.KPROBE, None, "sys_write"),
        ("kretprobe/tcp_v4_connect", P.KPROBE, None, "tcp_v4_connect"),
        ("kprobe.multi/tcp_*", P.KPROBE, A.TRACE_KPROBE_MULTI, "tcp_*"),
        ("uprobe", P.KPROBE, None, ""),
        ("uprobe//proc/self/exe:uprobed_sub", P.KPROBE, None, "/proc/self/exe:uprobed_sub"),
        ("usdt/libc.so.6:libc:setjmp", P.KPROBE, None, "libc.so.6:libc:setjmp"),
        ("ksyscall/kill", P.KPROBE, None, "kill"),
        ("tracepoint/syscalls/sys_enter_open", P.TRACEPOINT, None, "syscalls/sys_enter_open"),
        ("tp/sched/sched_switch", P.TRACEPOINT, None, "sched/sched_switch"),
        ("raw_tracepoint/sys_enter", P.RAW_TRACEPOINT, None, "sys_enter"),
        ("raw_tp/sys_enter", P.RAW_TRACEPOINT, None, "sys_enter"),
        ("raw_tp.w/bpf_test", P.RAW_TRACEPOINT_WRITABLE, None, "bpf_test"),
        ("tp_btf/task_newtask", P.TRACING, A.TRACE_RAW_TP, "task_newtask"),
        ("fentry/tcp_connect", P.TRACING, A.TRACE_FENTRY, "tcp_connect"),
        ("fexit/do_unlinkat", P.TRACING, A.TRACE_FEXIT, "do_unlinkat"),
        ("fmod_ret/bpf_modify_return_test", P.TRACING, A.MODIFY_RETURN, "bpf_modify_return_test"),
        ("freplace/get_constant", P.EXT, None, "get_constant"),
        ("lsm/bpf", P.LSM, A.LSM_MAC, "bpf"),
        ("lsm_cgroup/socket_bind", P.LSM, A.LSM_CGROUP, "socket_bind"),
        ("iter/task", P.TRACING, A.TRACE_ITER, "task"),
        ("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, ""),
        ("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, ""),
        ("cgroup/skb", P.CGROUP_SKB, None, ""),
        ("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, ""),
        ("cgroup/sock1", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, "1"),
        ("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE, ""),
        ("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND, ""),
        ("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND, ""),
        ("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND, ""),
        ("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, ""),
        ("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT, ""),
        ("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, ""),
        ("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG, ""),
        ("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG, ""),
        ("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT, ""),
        ("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL, ""),
        ("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE, ""),
        ("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS, ""),
        ("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER, ""),
        ("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT, ""),
        ("sk_skb", P.SK_SKB, None, ""),
        ("sk_skb1", P.SK_SKB, None, "1"),
        ("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT, ""),
        ("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP, ""),
        ("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE, ""),
        ("lwt_in", P.LWT_IN, None, ""),
        ("lwt_xmit", P.LWT_XMIT, None, ""),
        ("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR, ""),
        ("perf_event", P.PERF_EVENT, None, ""),
        ("struct_ops", P.STRUCT_OPS, None, ""),
        ("struct_ops/test_1", P.STRUCT_OPS, None, "test_1"),
        ("syscall", P.SYSCALL, None, ""),
        ("netfilter", P.NETFILTER, A.NETFILTER, ""),
    ],
)
def test_section(
    section: str, prog_type: ProgramType, attach_type: AttachType | None, target: str
) -> None:
    match = program_type_for_section(section)
    assert match is not None
    assert (match.prog_type, match.attach_type, match.target) == (prog_type, attach_type, target)


@pytest.mark.parametrize(
    "section",
    ["", ".text", "maps", ".maps", "license", "kprobex", "tcx", "tc/entry", "2/1", "bind", "xd"],
)
def test_unknown_section(section: str) -> None:
    assert program_type_for_section(section) is None


@pytest.mark.parametrize(
    ("section", "legacy"),
    [
        ("xdp", False),
        ("xdp_prog", True),
        ("socket/1", True),
        ("sk_lookup/", True),
        ("xdp_devmap/x", True),
        ("perf_section", True),
        ("kprobe/x", False),
    ],
)
def test_strict_matches_libbpf_1x(section: str, legacy: bool) -> None:
    # libbpf 1.x dropped sloppy prefixes; strict=True reproduces it.
    assert (program_type_for_section(section, strict=True) is None) == legacy
    match = program_type_for_section(section)
    assert match is not None and match.legacy == legacy


def test_sloppy_prefixes_never_shadow_an_exact_definition() -> None:
    # Non-strict mode only adds names: a name libbpf 1.x accepts keeps its meaning.
    for definition in SECTION_DEFS:
        name = definition.prefix.rstrip("+")
        if name.endswith("/"):
            name += "target"
        strict = program_type_for_section(name, strict=True)
        if strict is not None:
            assert program_type_for_section(name) == strict, name


def test_sleepable() -> None:
    assert program_type_for_section("fentry.s/x").sleepable
    assert program_type_for_section("syscall").sleepable
    assert not program_type_for_section("fentry/x").sleepable
    assert program_type_for_section("xdp.frags").definition.flags & SectionFlags.XDP_FRAGS


# --- PREVAIL's mapping ------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "path", "name", "prefix"),
    [
        ("xdp_prog", "", "xdp", "xdp"),
        ("cgroup/post_bind4", "", "cgroup_sock_addr", "cgroup/post_bind"),  # libbpf: CGROUP_SOCK
        ("cgroup/sock_release", "", "cgroup_sock", "cgroup/sock"),
        ("cgroup_skb/ingress", "", "socket_filter", None),  # libbpf: CGROUP_SKB
        ("tc", "", "socket_filter", None),  # libbpf: SCHED_CLS
        ("tp/sched/sched_switch", "", "socket_filter", None),  # libbpf: TRACEPOINT
        ("fentry.s/x", "", "tracing", "fentry.s/"),
        ("from-netdev", "cilium/bpf_xdp.o", "xdp", None),
        ("2/1", "cilium/bpf_lxc.o", "lxc", None),
        ("2/1", "cilium/bpf_netdev.o", "socket_filter", None),
    ],
)
def test_prevail_program_type(section: str, path: str, name: str, prefix: str | None) -> None:
    match = prevail_program_type(section, path)
    assert (match.program_type.name, match.prefix) == (name, prefix)


def test_prevail_sleepable() -> None:
    assert prevail_program_type("fentry.s/x").sleepable
    assert prevail_program_type("syscall/x").sleepable
    assert not prevail_program_type("fentry/x").sleepable


# --- every section of the PREVAIL sample inventory ---------------------------------

#: Section names in prevail-tests/elf_inventory.json that neither libbpf nor
#: PREVAIL's section table recognise. Their objects are loaded by tools that
#: take the program type from elsewhere (a command line, a config file, the
#: loader's code), so no section table can type them. PREVAIL verifies them
#: as socket filters, except cilium objects it types by file name.
UNKNOWN_SECTIONS = frozenset(
    {
        # Subprograms: BPF-to-BPF call targets, not programs.
        ".text",
        # cilium (iproute2-loaded): tail-call slots "<map>/<index>" and entry points.
        "1/0x1010",
        "1/0xdc06",
        "3/2",
        *(
            f"2/{i}"
            for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20, 21, 24)
        ),
        "from-container",
        "from-netdev",
        "from-overlay",
        # cilium's own loader: libbpf knows "tc" and "tc/ingress|egress", not these.
        "tc/entry",
        "tc/tail",
        # eBPF for Windows (the "invalid" project): its bind hook and
        # sock_addr recv_accept attach points have no Linux counterpart.
        "bind",
        *(f"bind/{i}" for i in range(35)),
        "cgroup/recv_accept4",
        "cgroup/recv_accept6",
        # Loaded with `tc filter … bpf obj X sec Y` / `ip route … bpf in`
        # (Linux samples, prototype-kernel) or by Suricata with a type in its config.
        "clone_redirect_recv",
        "clone_redirect_xmit",
        "drop_non_tun_vip",
        "filter",
        "ingress_redirect",
        "l2_to_ip6tun_ingress_redirect",
        "l2_to_iptun_ingress_forward",
        "l2_to_iptun_ingress_redirect",
        "len_hist",
        "loadbalancer",
        "redirect_recv",
        "redirect_xmit",
        "tc_mark",
        "tc_vlan_push",
        # OVS eBPF datapath: its loader assigns types in code.
        "af_xdp",
        "downcall",
        "egress",
        "ingress",
        *(f"tail-{i}" for i in (0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 32, 33, 35)),
        # cilium/ebpf loader tests and PREVAIL's own build/ test programs.
        "other",
        "static",
        "test",
        "test_md",
    }
)


def _inventory_sections(shared: Path) -> set[str]:
    inventory = shared / "prevail-tests" / "elf_inventory.json"
    if not inventory.is_file():
        pytest.skip(f"{inventory} missing")
    projects = json.loads(inventory.read_text())["projects"]
    return {
        section
        for project in projects.values()
        for entry in project["objects"].values()
        for section in entry["sections"]
    }


def test_inventory_sections(shared: Path) -> None:
    sections = _inventory_sections(shared)
    unknown = {name for name in sections if program_type_for_section(name) is None}
    # Exactly the listed names: a newly unmapped name is a regression, a
    # newly mapped one means this list (and its comments) must be updated.
    assert unknown == UNKNOWN_SECTIONS
    # PREVAIL must not know them either, or our table is missing its prefix.
    assert [name for name in unknown if prevail_program_type(name).prefix is not None] == []
