// SPDX-License-Identifier: GPL-2.0
/* Walks the IPv6 extension-header chain (hop-by-hop, routing, destination
 * options, fragment) in a bounded loop to find the upper-layer protocol.
 * Fragments are dropped, the chain length and final protocol are counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_EXT_HDRS 6

struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} l4_seen SEC(".maps");

__u32 last_chain_len;
__u32 last_l4_offset;
__u64 fragments_dropped;

SEC("xdp")
int xdp_v6_exthdr(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct ipv6_opt_hdr *opt;
	void *cursor;
	__u8 nexthdr;
	__u32 key, i;
	__u64 *seen;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	nexthdr = ip6->nexthdr;
	cursor = ip6 + 1;

	for (i = 0; i < MAX_EXT_HDRS; i++) {
		if (nexthdr == IPPROTO_FRAGMENT) {
			fragments_dropped++;
			return XDP_DROP;
		}
		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
		    nexthdr != IPPROTO_DSTOPTS)
			break;
		opt = cursor;
		if ((void *)(opt + 1) > data_end)
			return XDP_DROP;
		nexthdr = opt->nexthdr;
		cursor += (opt->hdrlen + 1) * 8;
	}
	last_chain_len = i;
	last_l4_offset = cursor - data;
	key = nexthdr;
	seen = bpf_map_lookup_elem(&l4_seen, &key);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
