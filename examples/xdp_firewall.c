// SPDX-License-Identifier: GPL-2.0
/* A firewall on IPv4 source prefixes: an LPM trie maps a prefix to an
 * action (XDP_DROP or XDP_PASS); the longest matching prefix wins, and
 * packets matching no rule pass. A per-action counter array counts the
 * verdicts. Exercises: BPF_MAP_TYPE_LPM_TRIE with the kernel's key layout
 * (prefix length, then the address bytes in network order). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct ipv4_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct ipv4_lpm_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rules SEC(".maps");

/* Indexed by XDP action: XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct ipv4_lpm_key key;
	__u32 action = XDP_PASS, *rule;
	__u64 *count;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	key.prefixlen = 32;
	key.addr = ip->saddr;
	rule = bpf_map_lookup_elem(&rules, &key);
	if (rule && *rule == XDP_DROP)
		action = XDP_DROP;
	count = bpf_map_lookup_elem(&verdicts, &action);
	if (count)
		__sync_fetch_and_add(count, 1);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
