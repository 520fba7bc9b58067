"""Helper prototypes: what each Linux helper takes and returns.

The kernel describes every helper with a `struct bpf_func_proto` (return
kind, up to five argument kinds); the verifier checks calls against it.
This module is that table as data, for the helpers pybpf implements. The
runtime's helper table (`pybpf.runtime.helpers`) joins each prototype with
its id and its implementation, so a helper is described once.

Kinds follow the kernel's `enum bpf_arg_type` / `enum bpf_return_type`
names (include/linux/bpf.h), without the `ARG_`/`RET_` prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from .helper_ids import HelperId


class ArgKind(Enum):
    """What a helper argument must be (the kernel's `enum bpf_arg_type`)."""

    ANYTHING = "anything"  # any initialised value
    CONST_MAP_PTR = "const_map_ptr"  # a map pointer from lddw
    PTR_TO_MAP_KEY = "ptr_to_map_key"  # key_size readable bytes
    PTR_TO_MAP_VALUE = "ptr_to_map_value"  # value_size readable bytes
    PTR_TO_UNINIT_MAP_VALUE = "ptr_to_uninit_map_value"  # value_size writable bytes
    PTR_TO_MEM = "ptr_to_mem"  # readable bytes, size in the next argument
    PTR_TO_MEM_OR_NULL = "ptr_to_mem_or_null"
    PTR_TO_UNINIT_MEM = "ptr_to_uninit_mem"  # writable bytes, size in the next argument
    PTR_TO_UNINIT_MEM_OR_NULL = "ptr_to_uninit_mem_or_null"
    CONST_SIZE = "const_size"  # > 0, bounds the previous pointer argument
    CONST_SIZE_OR_ZERO = "const_size_or_zero"
    CONST_ALLOC_SIZE_OR_ZERO = "const_alloc_size_or_zero"  # size of a new allocation
    PTR_TO_CTX = "ptr_to_ctx"
    PTR_TO_CTX_OR_NULL = "ptr_to_ctx_or_null"  # the context (offset 0) or the constant 0
    PTR_TO_FUNC = "ptr_to_func"  # a callback (lddw with src=BPF_PSEUDO_FUNC)
    PTR_TO_STACK_OR_NULL = "ptr_to_stack_or_null"
    PTR_TO_CONST_STR = "ptr_to_const_str"  # NUL-terminated string in read-only map data
    PTR_TO_ALLOC_MEM = "ptr_to_alloc_mem"  # a ringbuf reservation (released by the call)
    PTR_TO_SPIN_LOCK = "ptr_to_spin_lock"  # a struct bpf_spin_lock in a map value
    # A socket (PTR_TO_SOCKET or PTR_TO_SOCK_COMMON, checked non-NULL, at offset 0): the
    # kernel's ARG_PTR_TO_BTF_ID_SOCK_COMMON (bpf_sk_release releases it: OBJ_RELEASE).
    PTR_TO_SOCK_COMMON = "ptr_to_sock_common"


class RetKind(Enum):
    """What a helper returns (the kernel's `enum bpf_return_type`)."""

    INTEGER = "integer"
    VOID = "void"
    PTR_TO_MAP_VALUE_OR_NULL = "ptr_to_map_value_or_null"
    PTR_TO_ALLOC_MEM_OR_NULL = "ptr_to_alloc_mem_or_null"
    PTR_TO_SOCKET_OR_NULL = "ptr_to_socket_or_null"  # a full socket (struct bpf_sock)
    PTR_TO_SOCK_COMMON_OR_NULL = "ptr_to_sock_common_or_null"  # only sock_common fields


@dataclass(frozen=True, slots=True)
class HelperPrototype:
    """One helper's prototype: return kind, argument kinds, and call properties.

    `releases` names the argument index (0-based) whose reference the call
    releases (ringbuf submit/discard), `acquires` says the result is a new
    reference that must be released on every path (ringbuf reserve).
    `pkt_access` marks helpers that may read the packet through ctx, and
    `changes_pkt_data` those after which packet pointers are invalid
    (adjust_head, …), as in the kernel.
    """

    id: HelperId | int
    ret: RetKind
    args: tuple[ArgKind, ...] = ()
    acquires: bool = False
    releases: int | None = None
    changes_pkt_data: bool = False
    #: The C name of a helper outside Linux's numbering (eBPF for Windows' own).
    c_name: str | None = None

    @property
    def name(self) -> str:
        """The C name, e.g. `bpf_map_lookup_elem`."""
        if self.c_name is not None:
            return self.c_name
        return "bpf_" + HelperId(self.id).name.lower()


A = ArgKind
R = RetKind
H = HelperId


def _p(id_: HelperId, ret: RetKind, *args: ArgKind, **props: object) -> HelperPrototype:
    return HelperPrototype(id_, ret, tuple(args), **props)  # type: ignore[arg-type]


PROTOTYPES: dict[int, HelperPrototype] = {
    proto.id: proto
    for proto in (
        # maps
        _p(H.MAP_LOOKUP_ELEM, R.PTR_TO_MAP_VALUE_OR_NULL, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY),
        _p(
            H.MAP_UPDATE_ELEM,
            R.INTEGER,
            A.CONST_MAP_PTR,
            A.PTR_TO_MAP_KEY,
            A.PTR_TO_MAP_VALUE,
            A.ANYTHING,
        ),
        _p(H.MAP_DELETE_ELEM, R.INTEGER, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY),
        _p(H.MAP_PUSH_ELEM, R.INTEGER, A.CONST_MAP_PTR, A.PTR_TO_MAP_VALUE, A.ANYTHING),
        _p(H.MAP_POP_ELEM, R.INTEGER, A.CONST_MAP_PTR, A.PTR_TO_UNINIT_MAP_VALUE),
        _p(H.MAP_PEEK_ELEM, R.INTEGER, A.CONST_MAP_PTR, A.PTR_TO_UNINIT_MAP_VALUE),
        _p(
            H.FOR_EACH_MAP_ELEM,
            R.INTEGER,
            A.CONST_MAP_PTR,
            A.PTR_TO_FUNC,
            A.PTR_TO_STACK_OR_NULL,
            A.ANYTHING,
        ),
        _p(H.LOOP, R.INTEGER, A.ANYTHING, A.PTR_TO_FUNC, A.PTR_TO_STACK_OR_NULL, A.ANYTHING),
        _p(H.TAIL_CALL, R.VOID, A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING),
        _p(H.SPIN_LOCK, R.VOID, A.PTR_TO_SPIN_LOCK),
        _p(H.SPIN_UNLOCK, R.VOID, A.PTR_TO_SPIN_LOCK),
        # time, randomness, CPU
        _p(H.KTIME_GET_NS, R.INTEGER),
        _p(H.KTIME_GET_BOOT_NS, R.INTEGER),
        _p(H.KTIME_GET_COARSE_NS, R.INTEGER),
        _p(H.JIFFIES64, R.INTEGER),
        _p(H.GET_PRANDOM_U32, R.INTEGER),
        _p(H.GET_SMP_PROCESSOR_ID, R.INTEGER),
        _p(H.GET_NUMA_NODE_ID, R.INTEGER),
        # output
        # The kernel declares only the format: r3-r5 may be left unset when unused.
        _p(H.TRACE_PRINTK, R.INTEGER, A.PTR_TO_MEM, A.CONST_SIZE),
        _p(
            H.SNPRINTF,
            R.INTEGER,
            A.PTR_TO_UNINIT_MEM_OR_NULL,
            A.CONST_SIZE_OR_ZERO,
            A.PTR_TO_CONST_STR,
            A.PTR_TO_MEM_OR_NULL,
            A.CONST_SIZE_OR_ZERO,
        ),
        _p(
            H.RINGBUF_OUTPUT,
            R.INTEGER,
            A.CONST_MAP_PTR,
            A.PTR_TO_MEM,
            A.CONST_SIZE_OR_ZERO,
            A.ANYTHING,
        ),
        _p(
            H.RINGBUF_RESERVE,
            R.PTR_TO_ALLOC_MEM_OR_NULL,
            A.CONST_MAP_PTR,
            A.CONST_ALLOC_SIZE_OR_ZERO,
            A.ANYTHING,
            acquires=True,
        ),
        _p(H.RINGBUF_SUBMIT, R.VOID, A.PTR_TO_ALLOC_MEM, A.ANYTHING, releases=0),
        _p(H.RINGBUF_DISCARD, R.VOID, A.PTR_TO_ALLOC_MEM, A.ANYTHING, releases=0),
        _p(H.RINGBUF_QUERY, R.INTEGER, A.CONST_MAP_PTR, A.ANYTHING),
        _p(
            H.PERF_EVENT_OUTPUT,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.CONST_MAP_PTR,
            A.ANYTHING,
            A.PTR_TO_MEM,
            A.CONST_SIZE_OR_ZERO,
        ),
        # packets
        _p(H.XDP_ADJUST_HEAD, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, changes_pkt_data=True),
        _p(H.XDP_ADJUST_TAIL, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, changes_pkt_data=True),
        _p(H.XDP_ADJUST_META, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, changes_pkt_data=True),
        _p(H.XDP_GET_BUFF_LEN, R.INTEGER, A.PTR_TO_CTX),
        _p(
            H.XDP_LOAD_BYTES, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE
        ),
        _p(H.XDP_STORE_BYTES, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE),
        _p(H.REDIRECT, R.INTEGER, A.ANYTHING, A.ANYTHING),
        _p(H.REDIRECT_MAP, R.INTEGER, A.CONST_MAP_PTR, A.ANYTHING, A.ANYTHING),
        _p(
            H.CSUM_DIFF,
            R.INTEGER,
            A.PTR_TO_MEM_OR_NULL,
            A.CONST_SIZE_OR_ZERO,
            A.PTR_TO_MEM_OR_NULL,
            A.CONST_SIZE_OR_ZERO,
            A.ANYTHING,
        ),
        _p(
            H.L3_CSUM_REPLACE,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(
            H.L4_CSUM_REPLACE,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(
            H.SKB_LOAD_BYTES, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE
        ),
        _p(
            H.SKB_STORE_BYTES,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.PTR_TO_MEM,
            A.CONST_SIZE,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(
            H.SKB_CHANGE_HEAD,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(
            H.SKB_CHANGE_TAIL,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        # tracing, process and socket information (PREVAIL's src/linux/gpl/spec_prototypes.cpp)
        _p(H.PROBE_READ, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING),
        _p(H.PROBE_READ_STR, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING),
        _p(H.PROBE_READ_KERNEL, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING),
        _p(H.PROBE_READ_USER, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING),
        _p(
            H.PROBE_READ_KERNEL_STR,
            R.INTEGER,
            A.PTR_TO_UNINIT_MEM,
            A.CONST_SIZE_OR_ZERO,
            A.ANYTHING,
        ),
        _p(H.PROBE_READ_USER_STR, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING),
        _p(
            H.GET_STACK,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.PTR_TO_UNINIT_MEM,
            A.CONST_SIZE_OR_ZERO,
            A.ANYTHING,
        ),
        _p(H.PROBE_WRITE_USER, R.INTEGER, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE),
        _p(H.GET_CURRENT_PID_TGID, R.INTEGER),
        _p(H.GET_CURRENT_UID_GID, R.INTEGER),
        _p(H.GET_CURRENT_TASK, R.INTEGER),
        _p(H.GET_CURRENT_COMM, R.INTEGER, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE),
        _p(H.CURRENT_TASK_UNDER_CGROUP, R.INTEGER, A.CONST_MAP_PTR, A.ANYTHING),
        _p(H.GET_STACKID, R.INTEGER, A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING),
        _p(H.PERF_EVENT_READ, R.INTEGER, A.CONST_MAP_PTR, A.ANYTHING),
        _p(
            H.PERF_EVENT_READ_VALUE,
            R.INTEGER,
            A.CONST_MAP_PTR,
            A.ANYTHING,
            A.PTR_TO_UNINIT_MEM,
            A.CONST_SIZE,
        ),
        _p(H.PERF_PROG_READ_VALUE, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE),
        _p(H.OVERRIDE_RETURN, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING),
        _p(H.GET_SOCKET_COOKIE, R.INTEGER, A.PTR_TO_CTX),
        # sock_addr, sock, sockopt and sk_msg programs: the context or NULL (init_net's cookie)
        _p(H.GET_NETNS_COOKIE, R.INTEGER, A.PTR_TO_CTX_OR_NULL),
        # connect hooks: bind the socket to a struct sockaddr first
        _p(H.BIND, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE),
        # sockets (net/core/filter.c): a lookup acquires a reference that
        # bpf_sk_release must drop on every path
        *(
            _p(
                id_,
                ret,
                A.PTR_TO_CTX,
                A.PTR_TO_MEM,
                A.CONST_SIZE,
                A.ANYTHING,
                A.ANYTHING,
                acquires=True,
            )
            for id_, ret in (
                (H.SK_LOOKUP_TCP, R.PTR_TO_SOCKET_OR_NULL),
                (H.SK_LOOKUP_UDP, R.PTR_TO_SOCKET_OR_NULL),
                (H.SKC_LOOKUP_TCP, R.PTR_TO_SOCK_COMMON_OR_NULL),
            )
        ),
        _p(H.SK_RELEASE, R.INTEGER, A.PTR_TO_SOCK_COMMON, releases=0),
        # tc's bpf_sk_assign (bpf_tc_sk_assign_proto): the socket stays the caller's to release
        _p(H.SK_ASSIGN, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_SOCK_COMMON, A.ANYTHING),
        _p(
            H.TCP_CHECK_SYNCOOKIE,
            R.INTEGER,
            A.PTR_TO_SOCK_COMMON,
            A.PTR_TO_MEM,
            A.CONST_SIZE,
            A.PTR_TO_MEM,
            A.CONST_SIZE,
        ),
        _p(
            H.SETSOCKOPT,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            A.PTR_TO_MEM,
            A.CONST_SIZE,
        ),
        _p(
            H.GETSOCKOPT,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            A.PTR_TO_UNINIT_MEM,
            A.CONST_SIZE,
        ),
        _p(H.SOCK_OPS_CB_FLAGS_SET, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING),
        _p(
            H.SOCK_MAP_UPDATE,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.CONST_MAP_PTR,
            A.PTR_TO_MAP_KEY,
            A.ANYTHING,
        ),
        # sk_buff and routing (PREVAIL's src/linux/gpl/spec_prototypes.cpp)
        _p(
            H.CLONE_REDIRECT, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True
        ),
        _p(H.SKB_VLAN_PUSH, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True),
        _p(H.SKB_VLAN_POP, R.INTEGER, A.PTR_TO_CTX, changes_pkt_data=True),
        _p(
            H.SKB_GET_TUNNEL_KEY,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.PTR_TO_UNINIT_MEM,
            A.CONST_SIZE,
            A.ANYTHING,
        ),
        _p(H.SKB_SET_TUNNEL_KEY, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING),
        _p(H.SKB_GET_TUNNEL_OPT, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE),
        _p(H.SKB_SET_TUNNEL_OPT, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE),
        _p(
            H.SKB_CHANGE_PROTO,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(H.SKB_CHANGE_TYPE, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING),
        _p(H.SKB_UNDER_CGROUP, R.INTEGER, A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING),
        _p(H.GET_HASH_RECALC, R.INTEGER, A.PTR_TO_CTX),
        _p(H.SET_HASH_INVALID, R.INTEGER, A.PTR_TO_CTX),
        _p(H.SKB_PULL_DATA, R.INTEGER, A.PTR_TO_CTX, A.ANYTHING, changes_pkt_data=True),
        _p(
            H.SKB_ADJUST_ROOM,
            R.INTEGER,
            A.PTR_TO_CTX,
            A.ANYTHING,
            A.ANYTHING,
            A.ANYTHING,
            changes_pkt_data=True,
        ),
        _p(H.FIB_LOOKUP, R.INTEGER, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING),
        _p(
            H.REDIRECT_NEIGH,
            R.INTEGER,
            A.ANYTHING,
            A.PTR_TO_MEM_OR_NULL,
            A.CONST_SIZE_OR_ZERO,
            A.ANYTHING,
        ),
        _p(H.REDIRECT_PEER, R.INTEGER, A.ANYTHING, A.ANYTHING),
    )
}
"""Helper id → prototype, for every helper pybpf implements or verifies calls to."""


def prototype(helper_id: int) -> HelperPrototype | None:
    """The prototype of a helper, or None when pybpf does not know it (Linux's, then the
    helpers only eBPF for Windows has, at their internal ids)."""
    found = PROTOTYPES.get(helper_id)
    if found is None and helper_id >= EXTENSION_HELPER_BASE:
        from .extensions import helper_prototype

        found = helper_prototype(helper_id)
    elif found is None and helper_id >= WINDOWS_HELPER_BASE:
        from .windows_helpers import PROTOTYPES as WINDOWS_PROTOTYPES

        found = WINDOWS_PROTOTYPES.get(helper_id)
    return found


WINDOWS_HELPER_BASE = 0x7000_0000
"""Internal ids from here are eBPF for Windows' own helpers (`platform.windows`)."""
EXTENSION_HELPER_BASE = 0x7100_0000
"""Internal ids from here are registered extensions' helpers (`platform.extensions`)."""


# -- compiler builtins -------------------------------------------------------------------


class BuiltinId(IntEnum):
    """Compiler builtins a program may call as undefined external functions.

    clang emits `call memset` (a relocation against the undefined symbol)
    when it does not inline a large `__builtin_memset`/`memcpy`. PREVAIL's
    Linux platform resolves these names to builtins with negative ids
    (`LINUX_BUILTIN_CALL_*`, src/linux/linux_platform.cpp) for the call
    sites the relocations name; so does `verify_program`. The Linux kernel
    has no such functions, and pybpf's engines cannot run them yet.
    """

    MEMSET = -11
    MEMCPY = -12
    MEMMOVE = -13
    MEMCMP = -14


@dataclass(frozen=True, slots=True)
class BuiltinPrototype:
    """What a builtin requires (PREVAIL's `get_builtin_call_linux` contract).

    `numbers` are registers that must hold numbers; `writes` (`reads`)
    registers that point to `size` writable (readable) bytes of stack,
    packet or shared memory, where `size` names the register holding a
    number greater than 0. r0 is a number afterwards.
    """

    id: BuiltinId
    numbers: tuple[int, ...] = ()
    writes: tuple[int, ...] = ()
    reads: tuple[int, ...] = ()
    size: int = 3

    @property
    def name(self) -> str:
        """The C name, e.g. `memset`."""
        return self.id.name.lower()


BUILTINS: dict[str, BuiltinPrototype] = {
    proto.name: proto
    for proto in (
        BuiltinPrototype(BuiltinId.MEMSET, numbers=(2,), writes=(1,)),
        BuiltinPrototype(BuiltinId.MEMCPY, writes=(1,), reads=(2,)),
        BuiltinPrototype(BuiltinId.MEMMOVE, writes=(1,), reads=(2,)),
        BuiltinPrototype(BuiltinId.MEMCMP, reads=(1, 2)),
    )
}
"""Symbol name → prototype, for the builtins a call relocation may name."""


def builtin_prototype(builtin_id: int) -> BuiltinPrototype | None:
    """The prototype of builtin `builtin_id` (a negative `BuiltinId`), or None."""
    for proto in BUILTINS.values():
        if proto.id == builtin_id:
            return proto
    return None
