// SPDX-License-Identifier: GPL-2.0
/* Walks the QNAME of a DNS query (UDP port 53) label by label: a
 * variable-length walk in a bounded loop over length-prefixed labels.
 * Records the label count, the name length and a hash of the name; queries
 * whose name hashes to a value in the blocklist are dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_NAME 64

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} blocked_names SEC(".maps");

__u32 labels, name_len, name_hash;
__u16 query_id;

SEC("xdp")
int xdp_dns_qname(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct dnshdr *dns = (void *)(udp + 1);
	__u8 *p = (void *)(dns + 1);
	__u32 hash = 2166136261u, n = 0, nlabels = 0, left = 0, i, *hits;

	if ((void *)(dns + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(53))
		return XDP_PASS;
	query_id = bpf_ntohs(dns->id);

	for (i = 0; i < MAX_NAME; i++) {
		if ((void *)(p + 1) > data_end)
			return XDP_DROP;
		if (left == 0) {
			left = *p;
			if (left == 0)
				break;
			if (left > 63)
				return XDP_DROP;
			nlabels++;
		} else {
			hash = (hash ^ *p) * 16777619u;
			n++;
			left--;
		}
		p++;
	}
	labels = nlabels;
	name_len = n;
	name_hash = hash;
	hits = bpf_map_lookup_elem(&blocked_names, &hash);
	if (hits) {
		(*hits)++;
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
