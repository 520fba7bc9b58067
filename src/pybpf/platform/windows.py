"""eBPF for Windows' numbers: helper ids, map types, section names, return values.

Facts from the project's public headers (include/ebpf_structs.h,
include/ebpf_nethooks.h, netebpfext's program information), written here as
data. pybpf runs one internal numbering, Linux's, through its verifier,
engines and maps; a Windows object is brought to it when it is loaded:

- map types: `MAP_TYPES` (Windows number → internal `MapType`);
- helpers: `GENERAL_HELPERS` (Windows id → name, internal id). A helper
  Linux also has runs as Linux's (same semantics, other number); a helper
  only Windows has gets an internal id in a range of its own
  (`WINDOWS_HELPER_BASE` + its Windows id) with its own prototype and
  implementation (`runtime/windows_helpers`);
- program-type-specific helpers, which every Windows program type numbers
  from 0x10000 (so the same number means a different helper in each type):
  `TYPE_HELPERS[section kind][id]`;
- sections: `SECTIONS`, matched by the longest prefix as eBPF for Windows
  does (`section_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..elf.map_types import MapType
from .helper_ids import HelperId
from .helper_prototypes import WINDOWS_HELPER_BASE

__all__ = [
    "GENERAL_HELPERS",
    "MAP_TYPES",
    "SECTIONS",
    "TYPE_HELPERS",
    "TYPE_HELPER_BASE",
    "WINDOWS_HELPER_BASE",
    "WindowsHelper",
    "WindowsSection",
    "section_kind",
]

MAP_TYPES: dict[int, MapType] = {
    0: MapType.UNSPEC,
    1: MapType.HASH,
    2: MapType.ARRAY,
    3: MapType.PROG_ARRAY,
    4: MapType.PERCPU_HASH,
    5: MapType.PERCPU_ARRAY,
    6: MapType.HASH_OF_MAPS,
    7: MapType.ARRAY_OF_MAPS,
    8: MapType.LRU_HASH,
    9: MapType.LPM_TRIE,
    10: MapType.QUEUE,
    11: MapType.LRU_PERCPU_HASH,
    12: MapType.STACK,
    13: MapType.RINGBUF,
    14: MapType.PERF_EVENT_ARRAY,
    16: MapType.XSKMAP,
}
"""Windows `ebpf_map_type_t` → internal map type (15, the sample extension's hash map,
has no counterpart)."""

MAP_TYPE_NAMES = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "percpu_hash",
    5: "percpu_array", 6: "hash_of_maps", 7: "array_of_maps", 8: "lru_hash",
    9: "lpm_trie", 10: "queue", 11: "lru_percpu_hash", 12: "stack", 13: "ringbuf",
    14: "perf_event_array", 15: "sample_hash_map", 16: "xskmap",
}  # fmt: skip
"""Windows map type numbers → the names its tools print."""

TYPE_HELPER_BASE = 0x10000
"""Windows numbers every program type's own helpers from here."""


@dataclass(frozen=True)
class WindowsHelper:
    """One Windows helper: its Windows id and name, and the internal id it runs as."""

    id: int
    name: str
    internal: int


def _general(windows_id: int, name: str, linux: int | None = None) -> WindowsHelper:
    return WindowsHelper(
        windows_id, name, WINDOWS_HELPER_BASE + windows_id if linux is None else linux
    )


GENERAL_HELPERS: dict[int, WindowsHelper] = {
    h.id: h
    for h in (
        _general(1, "bpf_map_lookup_elem", HelperId.MAP_LOOKUP_ELEM),
        _general(2, "bpf_map_update_elem", HelperId.MAP_UPDATE_ELEM),
        _general(3, "bpf_map_delete_elem", HelperId.MAP_DELETE_ELEM),
        _general(4, "bpf_map_lookup_and_delete_elem"),
        _general(5, "bpf_tail_call", HelperId.TAIL_CALL),
        _general(6, "bpf_get_prandom_u32", HelperId.GET_PRANDOM_U32),
        _general(7, "bpf_ktime_get_boot_ns", HelperId.KTIME_GET_BOOT_NS),
        _general(8, "bpf_get_smp_processor_id", HelperId.GET_SMP_PROCESSOR_ID),
        _general(9, "bpf_ktime_get_ns", HelperId.KTIME_GET_NS),
        _general(10, "bpf_csum_diff", HelperId.CSUM_DIFF),
        _general(11, "bpf_ringbuf_output", HelperId.RINGBUF_OUTPUT),
        # bpf_printk picks one by its argument count: (fmt, fmt_size, up to three
        # values), the registers of Linux's bpf_trace_printk.
        _general(12, "bpf_trace_printk2", HelperId.TRACE_PRINTK),
        _general(13, "bpf_trace_printk3", HelperId.TRACE_PRINTK),
        _general(14, "bpf_trace_printk4", HelperId.TRACE_PRINTK),
        _general(15, "bpf_trace_printk5", HelperId.TRACE_PRINTK),
        _general(16, "bpf_map_push_elem", HelperId.MAP_PUSH_ELEM),
        _general(17, "bpf_map_pop_elem", HelperId.MAP_POP_ELEM),
        _general(18, "bpf_map_peek_elem", HelperId.MAP_PEEK_ELEM),
        _general(19, "bpf_get_current_pid_tgid", HelperId.GET_CURRENT_PID_TGID),
        _general(20, "bpf_get_current_logon_id"),
        _general(21, "bpf_is_current_admin"),
        _general(22, "bpf_memcpy_s"),
        _general(23, "bpf_memcmp_s"),
        _general(24, "bpf_memset"),
        _general(25, "bpf_memmove_s"),
        _general(26, "bpf_get_socket_cookie"),
        _general(27, "bpf_strncpy_s"),
        _general(28, "bpf_strncat_s"),
        _general(29, "bpf_strnlen_s"),
        _general(30, "bpf_ktime_get_boot_ms"),
        _general(31, "bpf_ktime_get_ms"),
        _general(32, "bpf_perf_event_output", HelperId.PERF_EVENT_OUTPUT),
        _general(33, "bpf_get_current_process_start_key"),
        _general(34, "bpf_get_current_thread_create_time"),
        _general(35, "bpf_redirect_map", HelperId.REDIRECT_MAP),
    )
}
"""Windows `ebpf_helper_id_t` → helper (include/ebpf_structs.h)."""


@dataclass(frozen=True)
class WindowsSection:
    """A section prefix: the Windows program type and attach type numbers it gives, and
    the kind of program (`xdp`, `bind`, `sock_addr`, `sock_ops`, `sample`)."""

    prefix: str
    prog_type: int
    attach_type: int
    kind: str


SECTIONS: tuple[WindowsSection, ...] = (
    WindowsSection("xdp", 1, 1, "xdp"),
    WindowsSection("bind", 2, 2, "bind"),
    WindowsSection("cgroup/connect4", 3, 3, "sock_addr"),
    WindowsSection("cgroup/connect6", 3, 4, "sock_addr"),
    WindowsSection("cgroup/recv_accept4", 3, 5, "sock_addr"),
    WindowsSection("cgroup/recv_accept6", 3, 6, "sock_addr"),
    WindowsSection("cgroup/connect_authorization4", 3, 12, "sock_addr"),
    WindowsSection("cgroup/connect_authorization6", 3, 13, "sock_addr"),
    WindowsSection("cgroup/bind4", 3, 14, "sock_addr"),
    WindowsSection("cgroup/bind6", 3, 15, "sock_addr"),
    WindowsSection("cgroup/listen4", 3, 16, "sock_addr"),
    WindowsSection("cgroup/listen6", 3, 17, "sock_addr"),
    WindowsSection("sockops", 4, 7, "sock_ops"),
    WindowsSection("sample_ext", 999, 8, "sample"),
)
"""eBPF for Windows' section prefixes (netebpfext's and the sample extension's)."""

TYPE_HELPERS: dict[str, dict[int, WindowsHelper]] = {
    "xdp": {0x10000: WindowsHelper(0x10000, "bpf_xdp_adjust_head", HelperId.XDP_ADJUST_HEAD)},
    "bind": {},
    "sock_addr": {
        0x10001: WindowsHelper(
            0x10001, "bpf_sock_addr_set_redirect_context", WINDOWS_HELPER_BASE + 0x1_0001
        ),
        0x10002: WindowsHelper(
            0x10002, "bpf_sock_addr_get_network_context", WINDOWS_HELPER_BASE + 0x1_0002
        ),
    },
    "sock_ops": {
        0x10000: WindowsHelper(0x10000, "bpf_sock_ops_get_flow_id", WINDOWS_HELPER_BASE + 0x2_0000)
    },
    # The sample extension's (sample_ext_helpers.h numbers them from 0xFFFF + 1).
    "sample": {
        0x10000 + n: WindowsHelper(0x10000 + n, name, WINDOWS_HELPER_BASE + 0x3_0000 + n)
        for n, name in enumerate(
            (
                "sample_ebpf_extension_helper_function1",
                "sample_ebpf_extension_find",
                "sample_ebpf_extension_replace",
                "sample_ebpf_extension_helper_implicit_1",
                "sample_ebpf_extension_helper_implicit_2",
            )
        )
    },
}
"""Each program kind's own helpers (ids from 0x10000), with the internal ids they run as."""


def internal_helper_name(internal: int) -> str | None:
    """The Windows name of a helper only Windows has, by its internal id (None if none)."""
    for helper in GENERAL_HELPERS.values():
        if helper.internal == internal:
            return helper.name
    for table in TYPE_HELPERS.values():
        for helper in table.values():
            if helper.internal == internal:
                return helper.name
    return None


def section_kind(section: str) -> WindowsSection | None:
    """The section prefix that names `section`: the longest that matches, as eBPF for
    Windows matches them; None when none does."""
    matches = [s for s in SECTIONS if section.startswith(s.prefix)]
    return max(matches, key=lambda s: len(s.prefix)) if matches else None


def helper_for(kind: str | None, windows_id: int) -> WindowsHelper | None:
    """The helper a Windows program of `kind` calls with `windows_id`, or None."""
    if windows_id >= TYPE_HELPER_BASE:
        return TYPE_HELPERS.get(kind or "", {}).get(windows_id)
    return GENERAL_HELPERS.get(windows_id)
