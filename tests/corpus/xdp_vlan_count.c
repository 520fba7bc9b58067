// SPDX-License-Identifier: GPL-2.0
/* Parses up to two VLAN tags (802.1Q and 802.1ad) and counts frames per
 * (outer) VLAN id in a hash map; untagged frames count under id 0. Frames
 * on a configured VLAN are dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

const volatile __u16 drop_vlan = 666;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u16);
	__type(value, __u64);
} per_vlan SEC(".maps");

__u16 inner_proto;
__u8 depth;

SEC("xdp")
int xdp_vlan_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vh = (void *)(eth + 1);
	__u16 proto, vid = 0, outer = 0;
	__u64 one = 1, *count;
	int i;

	if ((void *)vh > data_end)
		return XDP_DROP;
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return XDP_DROP;
		vid = bpf_ntohs(vh->tci) & 0x0fff;
		if (i == 0)
			outer = vid;
		proto = vh->encap_proto;
		vh++;
	}
	depth = i;
	inner_proto = bpf_ntohs(proto);
	count = bpf_map_lookup_elem(&per_vlan, &outer);
	if (count)
		*count += 1;
	else
		bpf_map_update_elem(&per_vlan, &outer, &one, BPF_NOEXIST);
	return outer == drop_vlan ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
