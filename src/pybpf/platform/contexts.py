"""Context layouts of every program type pybpf runs, and who may touch what.

`struct xdp_md`, `struct __sk_buff` (with `flow_keys` a pointer for flow
dissectors), `struct bpf_sk_lookup`, x86-64 `struct pt_regs` (kprobe),
`struct bpf_perf_event_data`, a raw tracepoint's u64 arguments and a
tracepoint's record.

A program receives a pointer to its context in r1. The kernel's verifier
checks every context access against the program type's rules
(`xdp_is_valid_access`, `sk_filter_is_valid_access`,
`tc_cls_act_is_valid_access` in net/core/filter.c) and rewrites loads of
pointer fields, which clang emits as 32-bit loads, into 64-bit loads of the
real pointer. pybpf has no verifier yet, so a `ContextAccess` applies the
same rules at run time: the engine hands it every access to a context
region (`runtime.memory.ContextRegion`) and it returns the value, the full
native address for a pointer field, or raises `ProgramFault`.

Offsets and sizes are those of /usr/include/linux/bpf.h (checked by
tests/test_contexts.py when a C compiler is present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ProgramFault

if TYPE_CHECKING:
    from ..runtime.memory import ContextRegion

__all__ = [
    "BPF_FLOW_KEYS_SIZE",
    "BPF_SOCK_ADDR",
    "SOCK_ADDR_LINUX_ACCESS",
    "FLOW_DISSECTOR_SKB",
    "MAX_BPF_FUNC_ARGS",
    "PERF_EVENT_DATA",
    "PERF_MAX_TRACE_SIZE",
    "PT_REGS",
    "PT_REGS_NAMES",
    "RAW_TP_ARGS",
    "SK_BUFF",
    "SK_LOOKUP",
    "TRACEPOINT_RECORD",
    "XDP_MD",
    "ContextAccess",
    "Field",
    "StructLayout",
]

_NARROW = frozenset({1, 2, 4})
_WORD = frozenset({4})
_DWORD = frozenset({8})
_ANY = frozenset({1, 2, 4, 8})


@dataclass(frozen=True, slots=True)
class Field:
    """One context field: where it is and which access sizes the kernel accepts.

    `pointer` marks a field the verifier rewrites into a pointer load
    (data, data_end, data_meta): its value comes from the region's pointer
    table, not from its bytes. `read_sizes` / `write_sizes` are the access
    widths allowed; any access must also be aligned to its width and lie
    inside the field.
    """

    name: str
    offset: int
    size: int
    read_sizes: frozenset[int] = _NARROW
    write_sizes: frozenset[int] = _WORD
    pointer: bool = False
    #: Bits the kernel keeps (0: all): `tc_classid`, `tc_index` and
    #: `queue_mapping` live in 16-bit members of the sk_buff, so a program
    #: that stores 0x12345 there reads back 0x2345.
    bits: int = 0

    @property
    def end(self) -> int:
        """First offset past the field."""
        return self.offset + self.size

    def read_mask(self, offset: int, size: int) -> int | None:
        """The mask a `size`-byte read at `offset` gets from `bits`, or None if it keeps all."""
        if not self.bits:
            return None
        whole = (1 << (8 * size)) - 1
        mask = ((1 << self.bits) - 1) >> (8 * (offset - self.offset)) & whole
        return None if mask == whole else mask


@dataclass(frozen=True, slots=True)
class StructLayout:
    """A C context struct: its name, size and fields (gaps are padding)."""

    name: str
    size: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        """The field called `name` (KeyError if none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def field_at(self, offset: int) -> Field | None:
        """The field covering byte `offset`, or None (padding or out of range)."""
        for f in self.fields:
            if f.offset <= offset < f.end:
                return f
        return None

    @property
    def pointers(self) -> tuple[str, ...]:
        """Names of the fields read as packet pointers."""
        return tuple(f.name for f in self.fields if f.pointer)


def _u32(name: str, offset: int, **kw: object) -> Field:
    return Field(name, offset, 4, **kw)  # type: ignore[arg-type]


XDP_MD = StructLayout(
    "xdp_md",
    24,
    (
        _u32("data", 0, read_sizes=_WORD, pointer=True),
        _u32("data_end", 4, read_sizes=_WORD, pointer=True),
        _u32("data_meta", 8, read_sizes=_WORD, pointer=True),
        _u32("ingress_ifindex", 12, read_sizes=_WORD),
        _u32("rx_queue_index", 16, read_sizes=_WORD),
        _u32("egress_ifindex", 20, read_sizes=_WORD),
    ),
)
"""`struct xdp_md`: every access is exactly 32 bits (`__is_valid_xdp_access`)."""

SK_BUFF = StructLayout(
    "__sk_buff",
    192,
    (
        _u32("len", 0),
        _u32("pkt_type", 4),
        _u32("mark", 8),
        _u32("queue_mapping", 12, bits=16),
        _u32("protocol", 16),
        _u32("vlan_present", 20),
        _u32("vlan_tci", 24),
        _u32("vlan_proto", 28),
        _u32("priority", 32),
        _u32("ingress_ifindex", 36),
        _u32("ifindex", 40),
        _u32("tc_index", 44, bits=16),
        Field("cb", 48, 20, read_sizes=_ANY, write_sizes=_ANY),
        _u32("hash", 68),
        _u32("tc_classid", 72, bits=16),
        _u32("data", 76, read_sizes=_WORD, pointer=True),
        _u32("data_end", 80, read_sizes=_WORD, pointer=True),
        _u32("napi_id", 84),
        _u32("family", 88),
        _u32("remote_ip4", 92, read_sizes=_WORD),
        _u32("local_ip4", 96, read_sizes=_WORD),
        Field("remote_ip6", 100, 16, read_sizes=_WORD),
        Field("local_ip6", 116, 16, read_sizes=_WORD),
        _u32("remote_port", 132),
        _u32("local_port", 136),
        _u32("data_meta", 140, read_sizes=_WORD, pointer=True),
        Field("flow_keys", 144, 8, read_sizes=frozenset(), write_sizes=frozenset()),
        Field("tstamp", 152, 8, read_sizes=_DWORD, write_sizes=_DWORD),
        _u32("wire_len", 160),
        _u32("gso_segs", 164),
        Field("sk", 168, 8, read_sizes=_DWORD, write_sizes=frozenset()),
        _u32("gso_size", 176, bits=16),
        Field("tstamp_type", 180, 1, read_sizes=frozenset(), write_sizes=frozenset()),
        Field("hwtstamp", 184, 8, read_sizes=_DWORD, write_sizes=frozenset()),
    ),
)
"""`struct __sk_buff` (192 bytes); sizes per `bpf_skb_is_valid_access`."""

FLOW_DISSECTOR_SKB = StructLayout(
    "__sk_buff",
    SK_BUFF.size,
    tuple(
        Field("flow_keys", f.offset, 8, read_sizes=_DWORD, write_sizes=frozenset(), pointer=True)
        if f.name == "flow_keys"
        else f
        for f in SK_BUFF.fields
    ),
)
"""`struct __sk_buff` as a flow dissector sees it: `flow_keys` is a pointer
(to a `struct bpf_flow_keys`), loaded whole as 64 bits."""

BPF_FLOW_KEYS_SIZE = 56
"""sizeof(struct bpf_flow_keys): what a flow dissector fills and a test run returns."""

SK_LOOKUP = StructLayout(
    "bpf_sk_lookup",
    72,
    (
        # The selected socket (or NULL); `cookie` in the union when given by user space.
        Field("sk", 0, 8, read_sizes=_DWORD, write_sizes=frozenset()),
        _u32("family", 8),
        _u32("protocol", 12),
        _u32("remote_ip4", 16),
        Field("remote_ip6", 20, 16),
        # __be16 remote_port and its 16-bit zero padding: both readable.
        _u32("remote_port", 36),
        _u32("local_ip4", 40),
        Field("local_ip6", 44, 16),
        _u32("local_port", 60),
        _u32("ingress_ifindex", 64),
    ),
)
"""`struct bpf_sk_lookup` (72 bytes); read-only (`sk_lookup_is_valid_access`)."""

PT_REGS_NAMES = (
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx",
    "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
)  # fmt: skip
"""x86-64 `struct pt_regs`, in order (21 u64 slots, 168 bytes)."""

PT_REGS = StructLayout(
    "pt_regs",
    8 * len(PT_REGS_NAMES),
    tuple(Field(n, 8 * i, 8, read_sizes=_ANY) for i, n in enumerate(PT_REGS_NAMES)),
)
"""A kprobe's context: any aligned read inside it, no writes (`kprobe_prog_is_valid_access`)."""

PERF_EVENT_DATA = StructLayout(
    "bpf_perf_event_data",
    PT_REGS.size + 16,
    (
        *(Field(f.name, f.offset, 8, read_sizes=_DWORD) for f in PT_REGS.fields),
        Field("sample_period", PT_REGS.size, 8, read_sizes=_ANY),
        Field("addr", PT_REGS.size + 8, 8, read_sizes=_ANY),
    ),
)
"""`struct bpf_perf_event_data`: registers read as whole u64s, the rest narrowly
(`pe_prog_is_valid_access`)."""

MAX_BPF_FUNC_ARGS = 12

RAW_TP_ARGS = StructLayout(
    "bpf_raw_tracepoint_args",
    8 * MAX_BPF_FUNC_ARGS,
    tuple(Field(f"args{i}", 8 * i, 8, read_sizes=_ANY) for i in range(MAX_BPF_FUNC_ARGS)),
)
"""A raw tracepoint's u64 arguments: aligned reads (`raw_tp_prog_is_valid_access`)."""

PERF_MAX_TRACE_SIZE = 8192

TRACEPOINT_RECORD = StructLayout(
    "trace_event_record",
    PERF_MAX_TRACE_SIZE,
    (
        Field("common", 0, 8, read_sizes=frozenset(), write_sizes=frozenset()),
        *(
            Field(f"word{i}", 8 * i, 8, read_sizes=_ANY, write_sizes=frozenset())
            for i in range(1, PERF_MAX_TRACE_SIZE // 8)
        ),
    ),
)
"""A tracepoint's record: the common fields (first 8 bytes) are not readable,
the rest by aligned reads (`tp_prog_is_valid_access`)."""

_SOCK_FIELDS = frozenset(
    {"family", "remote_ip4", "local_ip4", "remote_ip6", "local_ip6", "remote_port", "local_port"}
)


@dataclass(frozen=True, slots=True)
class ContextAccess:
    """A program type's view of its context: the layout plus what it may read and write.

    `unsupported` names fields the kernel allows but pybpf cannot give a
    faithful value for (e.g. `sk`, a socket pointer): reading them faults
    rather than returning a made-up value.
    """

    layout: StructLayout
    readable: frozenset[str]
    writable: frozenset[str]
    unsupported: frozenset[str] = frozenset()

    def _field(self, offset: int, size: int, write: bool) -> Field:
        kind = "write" if write else "read"
        where = f"{kind} of {size} bytes at offset {offset} of struct {self.layout.name}"
        field = self.layout.field_at(offset)
        if field is None:
            raise ProgramFault(f"{where}: not a field (padding or past the end)")
        allowed = self.writable if write else self.readable
        sizes = field.write_sizes if write else field.read_sizes
        if field.name not in allowed:
            raise ProgramFault(f"{where}: field {field.name} is not {kind}able here")
        if size not in sizes or offset % size or offset + size > field.end:
            raise ProgramFault(f"{where}: invalid access to field {field.name}")
        if field.name in self.unsupported:
            raise ProgramFault(f"{where}: field {field.name} is not supported by pybpf")
        if field.pointer and offset != field.offset:
            raise ProgramFault(f"{where}: partial access to pointer field {field.name}")
        return field

    def check(self, offset: int, size: int, *, write: bool) -> Field:
        """The field a `size`-byte access at `offset` touches; `ProgramFault` if invalid.

        The static verifier applies the same rules (`linux_ctx_fields`).
        """
        return self._field(offset, size, write)

    def load(self, region: ContextRegion, offset: int, size: int) -> int:
        """The value of a load: the full address for a pointer field, else the bytes."""
        field = self._field(offset, size, write=False)
        if field.pointer:
            return region.pointers[field.name]
        value = int.from_bytes(region.view[offset : offset + size], "little")
        mask = field.read_mask(offset, size)
        return value if mask is None else value & mask

    def check_store(self, region: ContextRegion, offset: int, size: int) -> None:
        """Raise `ProgramFault` unless the program type may store here."""
        self._field(offset, size, write=True)


def _names(layout: StructLayout) -> frozenset[str]:
    return frozenset(f.name for f in layout.fields)


XDP_ACCESS = ContextAccess(XDP_MD, _names(XDP_MD) - {"egress_ifindex"}, frozenset())
# egress_ifindex is readable only by BPF_XDP_DEVMAP programs, which cannot be test-run.

SOCKET_FILTER_ACCESS = ContextAccess(
    SK_BUFF,
    _names(SK_BUFF)
    - _SOCK_FIELDS
    - {"tc_classid", "data", "data_end", "data_meta", "tstamp", "wire_len", "hwtstamp"},
    frozenset({"cb"}),
    unsupported=frozenset({"sk"}),
)

SCHED_CLS_ACCESS = ContextAccess(
    SK_BUFF,
    _names(SK_BUFF) - _SOCK_FIELDS,
    frozenset({"mark", "tc_index", "priority", "tc_classid", "cb", "tstamp", "queue_mapping"}),
    unsupported=frozenset({"sk"}),
)

CGROUP_SKB_ACCESS = ContextAccess(
    SK_BUFF,
    _names(SK_BUFF) - {"tc_classid", "data_meta", "wire_len", "flow_keys", "tstamp_type"},
    frozenset({"mark", "priority", "cb", "tstamp"}),
    unsupported=frozenset({"sk"}),
)  # cg_skb_is_valid_access

FLOW_DISSECTOR_ACCESS = ContextAccess(
    FLOW_DISSECTOR_SKB, frozenset({"data", "data_end", "flow_keys"}), frozenset()
)  # flow_dissector_is_valid_access: data, data_end (32-bit) and flow_keys (64-bit), no writes


def _read_only(layout: StructLayout) -> ContextAccess:
    return ContextAccess(layout, _names(layout), frozenset())


RAW_TP_ACCESS = _read_only(RAW_TP_ARGS)

SK_LOOKUP_ACCESS = _read_only(SK_LOOKUP)
KPROBE_ACCESS = _read_only(PT_REGS)
PERF_EVENT_ACCESS = _read_only(PERF_EVENT_DATA)
RAW_TP_WRITABLE_ACCESS = ContextAccess(RAW_TP_ARGS, _names(RAW_TP_ARGS), _names(RAW_TP_ARGS))
TRACEPOINT_ACCESS = ContextAccess(
    TRACEPOINT_RECORD, _names(TRACEPOINT_RECORD) - {"common"}, frozenset()
)


# -- struct bpf_sock_addr (cgroup/connect4, sendmsg6, …): the kernel's sock_addr_is_valid_access

BPF_SOCK_ADDR_SIZE = 72
#: field → (offset, end) of struct bpf_sock_addr
_SOCK_ADDR = {
    "user_family": (0, 4),
    "user_ip4": (4, 8),
    "user_ip6": (8, 24),
    "user_port": (24, 28),
    "family": (28, 32),
    "type": (32, 36),
    "protocol": (36, 40),
    "msg_src_ip4": (40, 44),
    "msg_src_ip6": (44, 60),
    "sk": (64, 72),
}
_IP6_READ = frozenset({1, 2, 4, 8})
_IP6_WRITE = frozenset({4, 8})
BPF_SOCK_ADDR = StructLayout(
    "bpf_sock_addr",
    BPF_SOCK_ADDR_SIZE,
    (
        Field("user_family", 0, 4, _WORD, frozenset()),
        Field("user_ip4", 4, 4),
        Field("user_ip6", 8, 16, _IP6_READ, _IP6_WRITE),
        Field("user_port", 24, 4),
        Field("family", 28, 4, _WORD, frozenset()),
        Field("type", 32, 4, _WORD, frozenset()),
        Field("protocol", 36, 4, _WORD, frozenset()),
        Field("msg_src_ip4", 40, 4),
        Field("msg_src_ip6", 44, 16, _IP6_READ, _IP6_WRITE),
        Field("sk", 64, 8, read_sizes=_DWORD, write_sizes=frozenset()),
    ),
)
"""struct bpf_sock_addr as a program sees it; addresses and the port in network order
(user_port's 16 bits first). Which fields each attach type may touch is the verifier's
(`sock_addr_access_error`)."""
SOCK_ADDR_LINUX_ACCESS = ContextAccess(
    BPF_SOCK_ADDR,
    _names(BPF_SOCK_ADDR),
    frozenset({"user_ip4", "user_ip6", "user_port", "msg_src_ip4", "msg_src_ip6"}),
    unsupported=frozenset({"sk"}),
)

#: The address fields and the attach types whose hook has them (the others refuse them).
_SOCK_ADDR_FAMILY: dict[str, frozenset[str]] = {
    "user_ip4": frozenset(
        {
            "CGROUP_INET4_BIND",
            "CGROUP_INET4_CONNECT",
            "CGROUP_INET4_GETPEERNAME",
            "CGROUP_INET4_GETSOCKNAME",
            "CGROUP_UDP4_SENDMSG",
            "CGROUP_UDP4_RECVMSG",
        }
    ),
    "user_ip6": frozenset(
        {
            "CGROUP_INET6_BIND",
            "CGROUP_INET6_CONNECT",
            "CGROUP_INET6_GETPEERNAME",
            "CGROUP_INET6_GETSOCKNAME",
            "CGROUP_UDP6_SENDMSG",
            "CGROUP_UDP6_RECVMSG",
        }
    ),
    "msg_src_ip4": frozenset({"CGROUP_UDP4_SENDMSG"}),
    "msg_src_ip6": frozenset({"CGROUP_UDP6_SENDMSG"}),
}
#: The fields a program may write (with 4-byte stores; the IPv6 arrays also 8-byte).
_SOCK_ADDR_WRITABLE = frozenset({"user_ip4", "user_ip6", "msg_src_ip4", "msg_src_ip6", "user_port"})


def sock_addr_access_error(offset: int, size: int, write: bool, attach: str | None) -> str | None:
    """Why the kernel refuses a `size`-byte access at `offset` of struct bpf_sock_addr
    in a program of expected attach type `attach` (an `AttachType` name), or None.

    sock_addr_is_valid_access: aligned accesses inside the struct; the address
    fields only in the hooks of their family (connect4 has no user_ip6);
    writes only to the address and port fields, 4 bytes wide (8 for a wide
    IPv6 access); reads of the address fields 1, 2 or 4 bytes wide (or 8 for
    IPv6), of the other fields 4 bytes; `sk` read whole (a socket pointer).
    """
    why = f"invalid bpf_context access off={offset} size={size}"
    if offset < 0 or offset >= BPF_SOCK_ADDR_SIZE or size not in (1, 2, 4, 8) or offset % size:
        return why
    name = next((n for n, (lo, hi) in _SOCK_ADDR.items() if lo <= offset < hi), None)
    if name is None:
        return f"{why} (padding of struct bpf_sock_addr)"
    lo, hi = _SOCK_ADDR[name]
    if name in _SOCK_ADDR_FAMILY and attach not in _SOCK_ADDR_FAMILY[name]:
        hook = attach or "this attach type"
        return f"{why} ({name} is not a field of the {hook} hook)"
    wide = size == 8 and name in ("user_ip6", "msg_src_ip6") and offset + 8 <= hi
    if name == "sk":
        return None if not write and size == 8 else f"{why} (sk is read-only, 8 bytes wide)"
    if write:
        if name not in _SOCK_ADDR_WRITABLE:
            return f"{why} ({name} is read-only)"
        return None if size == 4 or wide else f"{why} ({name} is written 4 bytes wide)"
    if name in _SOCK_ADDR_WRITABLE:
        return None if size <= 4 or wide else f"{why} ({name} is read at most 4 bytes wide)"
    return None if size == 4 else f"{why} ({name} is read 4 bytes wide)"
