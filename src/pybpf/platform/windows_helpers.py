"""Prototypes of the helpers only eBPF for Windows has, at their internal ids.

The verifier checks calls against these as against Linux's
(`helper_prototypes.prototype` looks here for ids from
`WINDOWS_HELPER_BASE`); `runtime/windows_helpers.py` implements them.
Argument kinds follow eBPF for Windows' verifier prototypes: writable
memory and its size, readable memory and its size, the context.
"""

from __future__ import annotations

from .helper_prototypes import WINDOWS_HELPER_BASE, HelperPrototype
from .helper_prototypes import ArgKind as A
from .helper_prototypes import RetKind as R
from .windows import GENERAL_HELPERS, TYPE_HELPERS

__all__ = ["PROTOTYPES"]

_WRITE = (A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO)
_READ = (A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO)

_SHAPES: dict[str, tuple[R, tuple[A, ...]]] = {
    "bpf_map_lookup_and_delete_elem": (
        R.PTR_TO_MAP_VALUE_OR_NULL,
        (A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY),
    ),
    "bpf_get_current_logon_id": (R.INTEGER, (A.PTR_TO_CTX,)),
    "bpf_is_current_admin": (R.INTEGER, (A.PTR_TO_CTX,)),
    "bpf_memcpy_s": (R.INTEGER, _WRITE + _READ),
    "bpf_memcmp_s": (R.INTEGER, _READ + _READ),
    "bpf_memset": (R.INTEGER, _WRITE + (A.ANYTHING,)),
    "bpf_memmove_s": (R.INTEGER, _WRITE + _READ),
    "bpf_get_socket_cookie": (R.INTEGER, (A.PTR_TO_CTX,)),
    "bpf_strncpy_s": (R.INTEGER, _WRITE + _READ),
    "bpf_strncat_s": (R.INTEGER, _WRITE + _READ),
    "bpf_strnlen_s": (R.INTEGER, _READ),
    "bpf_ktime_get_boot_ms": (R.INTEGER, ()),
    "bpf_ktime_get_ms": (R.INTEGER, ()),
    "bpf_get_current_process_start_key": (R.INTEGER, ()),
    "bpf_get_current_thread_create_time": (R.INTEGER, ()),
    "bpf_sock_addr_set_redirect_context": (R.INTEGER, (A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE)),
    "bpf_sock_addr_get_network_context": (
        R.INTEGER,
        (A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE),
    ),
    "bpf_sock_ops_get_flow_id": (R.INTEGER, (A.PTR_TO_CTX,)),
    "sample_ebpf_extension_helper_function1": (R.INTEGER, (A.PTR_TO_CTX,)),
    "sample_ebpf_extension_find": (R.INTEGER, (A.PTR_TO_MEM, A.CONST_SIZE) * 2),
    # Windows declares the buffer readable memory, yet the helper writes into it: pybpf
    # declares it writable, so the verifier forgets what the buffer held before the call.
    "sample_ebpf_extension_replace": (
        R.INTEGER,
        (A.PTR_TO_UNINIT_MEM, A.CONST_SIZE, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE),
    ),
    # "Implicit" helpers: the context reaches the implementation without an argument.
    "sample_ebpf_extension_helper_implicit_1": (R.INTEGER, ()),
    "sample_ebpf_extension_helper_implicit_2": (R.INTEGER, (A.ANYTHING,)),
}

_OWN = [h for h in GENERAL_HELPERS.values() if h.internal >= WINDOWS_HELPER_BASE] + [
    h
    for table in TYPE_HELPERS.values()
    for h in table.values()
    if h.internal >= WINDOWS_HELPER_BASE
]

PROTOTYPES: dict[int, HelperPrototype] = {
    h.internal: HelperPrototype(h.internal, *_SHAPES[h.name], c_name=h.name) for h in _OWN
}
"""Internal id → prototype of every helper only eBPF for Windows has."""
