// SPDX-License-Identifier: GPL-2.0
/* Workload e of bench_engines.py: one hash map lookup per packet and no
 * writes at all (the IP protocol's action from `proto_action`, XDP_PASS when
 * absent), so that two threads on one program instance share nothing they
 * write: their scaling shows what map lookups themselves cost in parallel. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_action SEC(".maps");

SEC("xdp")
int hash_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 key;
	__u64 *action;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	key = ip->protocol;
	action = bpf_map_lookup_elem(&proto_action, &key);
	return action ? (int)*action : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
