// SPDX-License-Identifier: MIT
/* eBPF for Windows tail calls and bpf-to-bpf calls: a bind program that
 * dispatches on the operation through a program array (bpf_tail_call,
 * Windows helper 5), whose targets share a static function; a legacy
 * "maps" section record (32 bytes: type, sizes, max entries, inner map
 * index, pinning, id, inner id) holds the program array. */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

SEC("maps")
struct bpf_map_def programs = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.key_size = sizeof(uint32_t),
	.value_size = sizeof(uint32_t),
	.max_entries = 3,
};

SEC("maps")
struct bpf_map_def seen = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(uint32_t),
	.value_size = sizeof(uint64_t),
	.max_entries = 3,
};

static __attribute__((noinline)) int note(uint32_t operation)
{
	uint64_t *n = bpf_map_lookup_elem(&seen, &operation);

	if (n)
		*n += 1;
	return operation;
}

SEC("bind/on_bind")
bind_action_t on_bind(bind_md_t *ctx)
{
	note(BIND_OPERATION_BIND);
	return ctx->protocol == 17 ? BIND_DENY : BIND_PERMIT;
}

SEC("bind/on_unbind")
bind_action_t on_unbind(bind_md_t *ctx)
{
	note(BIND_OPERATION_UNBIND);
	return BIND_PERMIT;
}

SEC("bind")
bind_action_t dispatch(bind_md_t *ctx)
{
	bpf_tail_call(ctx, &programs, ctx->operation);
	/* No program for this operation. */
	return BIND_PERMIT_HARD;
}
