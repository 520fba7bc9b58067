// SPDX-License-Identifier: GPL-2.0
/* Map-in-map with BTF-declared inner maps: an array of maps whose slots are
 * filled at load time by libbpf from `.values`. The first byte of the
 * IPv4 TOS selects the inner table; the inner array counts per protocol.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct inner_counts {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_counts table_low SEC(".maps");
struct inner_counts table_high SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_counts);
} tables SEC(".maps") = {
	.values = { [0] = &table_low, [1] = &table_high },
};

__u32 no_table;

SEC("xdp")
int xdp_map_in_map(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 which, slot;
	void *inner;
	__u64 *count;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	which = ip->tos >> 7;
	inner = bpf_map_lookup_elem(&tables, &which);
	if (!inner) {
		no_table++;
		return XDP_ABORTED;
	}
	slot = ip->protocol & 3;
	count = bpf_map_lookup_elem(inner, &slot);
	if (!count)
		return XDP_ABORTED;
	*count += data_end - data;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
