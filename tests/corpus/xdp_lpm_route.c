// SPDX-License-Identifier: GPL-2.0
/* Longest-prefix match of the IPv4 destination in an LPM trie filled from
 * user space: the matched entry gives the action and a hit counter.
 * Unmatched destinations use the `default_action` configuration.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct route {
	__u32 action;
	__u32 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__type(key, struct lpm_v4_key);
	__type(value, struct route);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

const volatile __u32 default_action = XDP_PASS;
__u32 misses;

SEC("xdp")
int xdp_lpm_route(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct lpm_v4_key key = { .prefixlen = 32 };
	struct route *r;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__builtin_memcpy(key.addr, &ip->daddr, 4);
	r = bpf_map_lookup_elem(&routes, &key);
	if (!r) {
		misses++;
		return default_action;
	}
	__sync_fetch_and_add(&r->hits, 1);
	return r->action;
}

char LICENSE[] SEC("license") = "GPL";
