// SPDX-License-Identifier: MIT
/* An eBPF for Windows bind monitor: each process may hold at most
 * `max_binds` bound sockets (a global in .rodata); a bind beyond that is
 * denied, an unbind frees the slot. The process's count lives in a hash map
 * keyed by process id; the app id (the bytes between app_id_start and
 * app_id_end) of the last permitted bind is kept per process too. */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

const volatile uint32_t max_binds = 2;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, uint64_t);
	__type(value, uint32_t);
} bind_counts SEC(".maps");

struct app_name {
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, uint64_t);
	__type(value, struct app_name);
} app_names SEC(".maps");

static void remember_app(bind_md_t *ctx, uint64_t pid)
{
	struct app_name app = {};
	uint8_t *start = ctx->app_id_start, *end = ctx->app_id_end;

	/* The verifier knows the app id's length only through app_id_end. */
	for (int i = 0; i < 15; i++) {
		if (start + i + 1 > end)
			break;
		app.name[i] = start[i];
	}
	bpf_map_update_elem(&app_names, &pid, &app, BPF_ANY);
}

SEC("bind")
bind_action_t limit_binds(bind_md_t *ctx)
{
	uint64_t pid = ctx->process_id;
	uint32_t *count = bpf_map_lookup_elem(&bind_counts, &pid);
	uint32_t one = 1;

	if (ctx->operation == BIND_OPERATION_UNBIND) {
		if (count && *count > 0)
			*count -= 1;
		return BIND_PERMIT;
	}
	if (ctx->operation != BIND_OPERATION_BIND)
		return BIND_PERMIT;
	if (!count) {
		bpf_map_update_elem(&bind_counts, &pid, &one, BPF_ANY);
		remember_app(ctx, pid);
		return BIND_PERMIT;
	}
	if (*count >= max_binds)
		return BIND_DENY;
	*count += 1;
	remember_app(ctx, pid);
	return BIND_PERMIT;
}
