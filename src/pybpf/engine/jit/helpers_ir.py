"""Native helpers for JIT-compiled programs, registered with `helper_registry` on import.

The emitters live in one module per group:

* `native_maps`: bpf_map_lookup_elem / update / delete (every family whose
  native functions the interpreter calls; array and per-CPU array lookups
  inlined) and the ring buffer's reserve / submit / discard / output / query;
* `native_packet`: bpf_xdp_adjust_head / tail / meta, bpf_csum_diff,
  bpf_l3_csum_replace, bpf_l4_csum_replace, on the context's native
  pointer array (`RunState.ctx_pointers`);
* `native_clock`: bpf_ktime_get_ns / boot / coarse, bpf_jiffies64,
  bpf_get_prandom_u32, bpf_get_smp_processor_id, bpf_get_numa_node_id;
* `native_tailcall`: bpf_tail_call to a JIT-compiled target;
* `native_caller`: bpf_get_current_pid_tgid / uid_gid and
  bpf_get_socket_cookie / netns_cookie from the caller record a hook set.

Every other helper, and the rare cases these cannot handle natively (a
map not known when the program was compiled, a run without a context
region), goes through the Python fallback, which runs the same helper
table entry the interpreter runs.
"""

from __future__ import annotations

from . import native_caller, native_clock, native_maps, native_packet, native_tailcall
from .helper_registry import register

NATIVE_HELPERS: dict[int, object] = {
    **native_maps.EMITTERS,
    **native_packet.EMITTERS,
    **native_clock.EMITTERS,
    **native_caller.EMITTERS,
    **native_tailcall.EMITTERS,
}
"""Helper id → emitter of every helper with a native implementation."""

for _helper_id, _emitter in NATIVE_HELPERS.items():
    register(int(_helper_id), _emitter)  # type: ignore[arg-type]
