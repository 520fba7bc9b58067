// SPDX-License-Identifier: GPL-2.0
/* Flaw: an 8-byte key whose second half is never written is passed to
 * bpf_map_lookup_elem. SAFE: both halves written. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u32 ifindex;
	__u32 queue;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct key);
	__type(value, __u64);
} by_queue SEC(".maps");

SEC("xdp")
int uninit_stack_key(struct xdp_md *ctx)
{
	struct key key;
	__u64 *val;

	key.ifindex = ctx->ingress_ifindex;
#ifdef SAFE
	key.queue = ctx->rx_queue_index;
#endif
	val = bpf_map_lookup_elem(&by_queue, &key);
	return val ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
