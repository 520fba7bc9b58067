"""eBPF for Windows' context structs, as laid out for x64 and `clang -target bpf`.

Facts from the platform's documented headers (include/ebpf_nethooks.h, the
XDP hook's header, the sample extension's): field offsets and sizes, and
which fields the verifier treats as the packet's start and end. Unlike
Linux's, these contexts hold real 64-bit pointers (xdp_md's data/data_end,
bind_md's app id range): a program loads them with 8-byte reads and no
rewriting. The pointer fields keep pybpf's internal names `data` /
`data_end` (the C names are in comments) because the packet machinery
finds them by those names.

Access rules are PREVAIL's (eBPF for Windows' verifier): any width inside a
field; stores only where the hook reads the result back (bind's socket
address for BIND_REDIRECT, sock_addr's destination for a redirect).
"""

from __future__ import annotations

from .contexts import ContextAccess, Field, StructLayout

__all__ = [
    "BIND_MD",
    "BIND_MD_ACCESS",
    "SAMPLE_CONTEXT",
    "SAMPLE_CONTEXT_ACCESS",
    "SOCK_ADDR",
    "SOCK_ADDR_ACCESS",
    "SOCK_OPS",
    "SOCK_OPS_ACCESS",
    "WINDOWS_XDP_MD",
    "WINDOWS_XDP_ACCESS",
]

_ANY = frozenset({1, 2, 4, 8})
_PTR = frozenset({8})


def _f(name: str, offset: int, size: int, *, pointer: bool = False) -> Field:
    sizes = _PTR if pointer else frozenset(s for s in _ANY if s <= size)
    return Field(name, offset, size, read_sizes=sizes, write_sizes=sizes, pointer=pointer)


def _access(layout: StructLayout, writable: tuple[str, ...] = ()) -> ContextAccess:
    return ContextAccess(layout, frozenset(f.name for f in layout.fields), frozenset(writable))


WINDOWS_XDP_MD = StructLayout(
    "xdp_md",
    32,
    (
        _f("data", 0, 8, pointer=True),
        _f("data_end", 8, 8, pointer=True),
        _f("data_meta", 16, 8, pointer=True),  # a uint64_t in C, the verifier's meta
        _f("ingress_ifindex", 24, 4),
    ),
)
WINDOWS_XDP_ACCESS = _access(WINDOWS_XDP_MD)

BIND_MD = StructLayout(
    "bind_md",
    56,
    (
        _f("data", 0, 8, pointer=True),  # app_id_start
        _f("data_end", 8, 8, pointer=True),  # app_id_end
        _f("process_id", 16, 8),
        _f("socket_address", 24, 16),
        _f("socket_address_length", 40, 1),
        _f("operation", 44, 4),  # BIND_OPERATION_BIND, _POST_BIND, _UNBIND
        _f("protocol", 48, 1),
    ),
)
BIND_MD_ACCESS = _access(BIND_MD, ("socket_address", "socket_address_length"))

SOCK_ADDR = StructLayout(
    "bpf_sock_addr",
    64,
    (
        _f("family", 0, 4),
        _f("msg_src_ip", 4, 16),  # msg_src_ip4 / msg_src_ip6
        _f("msg_src_port", 20, 2),
        _f("user_ip", 24, 16),  # user_ip4 / user_ip6: the destination
        _f("user_port", 40, 2),
        _f("protocol", 44, 4),
        _f("compartment_id", 48, 4),
        _f("interface_luid", 56, 8),
    ),
)
SOCK_ADDR_ACCESS = _access(SOCK_ADDR, ("user_ip", "user_port"))

SOCK_OPS = StructLayout(
    "bpf_sock_ops",
    64,
    (
        _f("op", 0, 4),  # BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, …
        _f("family", 4, 4),
        _f("local_ip", 8, 16),
        _f("local_port", 24, 4),
        _f("remote_ip", 28, 16),
        _f("remote_port", 44, 4),
        _f("protocol", 48, 1),
        _f("compartment_id", 52, 4),
        _f("interface_luid", 56, 8),
    ),
)
SOCK_OPS_ACCESS = _access(SOCK_OPS)

SAMPLE_CONTEXT = StructLayout(
    "sample_program_context",
    32,
    (
        _f("data", 0, 8, pointer=True),  # data_start
        _f("data_end", 8, 8, pointer=True),
        _f("uint32_data", 16, 4),
        _f("uint16_data", 20, 2),
        _f("helper_data_1", 24, 4),
        _f("helper_data_2", 28, 4),
    ),
)
SAMPLE_CONTEXT_ACCESS = _access(SAMPLE_CONTEXT)
