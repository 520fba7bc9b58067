// SPDX-License-Identifier: MIT
/* An eBPF for Windows connect policy (cgroup/connect4): connections to a
 * destination (IPv4 address and port, network order) listed in `blocked`
 * are rejected; connections to port 80 anywhere are redirected to the
 * proxy in `proxy` (its address and port written into the context, with a
 * redirect context naming the original destination); the rest proceed.
 * Verdicts are counted in `verdicts` by ebpf_sock_addr_verdict_t. */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

struct destination {
	uint32_t ip4;
	uint16_t port;
	uint16_t pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct destination);
	__type(value, uint8_t);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, uint32_t);
	__type(value, struct destination);
} proxy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, uint32_t);
	__type(value, uint64_t);
} verdicts SEC(".maps");

static int count(int verdict)
{
	uint32_t key = verdict;
	uint64_t *n = bpf_map_lookup_elem(&verdicts, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return verdict;
}

SEC("cgroup/connect4")
int connect_policy(bpf_sock_addr_t *ctx)
{
	struct destination dest = {.ip4 = ctx->user_ip4, .port = ctx->user_port};
	struct destination *to;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(&blocked, &dest))
		return count(BPF_SOCK_ADDR_VERDICT_REJECT);
	if (ctx->user_port == __builtin_bswap16(80)) {
		to = bpf_map_lookup_elem(&proxy, &zero);
		if (to && to->ip4) {
			bpf_sock_addr_set_redirect_context(ctx, &dest, sizeof(dest));
			ctx->user_ip4 = to->ip4;
			ctx->user_port = to->port;
			return count(BPF_SOCK_ADDR_VERDICT_PROCEED_HARD);
		}
	}
	return count(BPF_SOCK_ADDR_VERDICT_PROCEED_SOFT);
}
