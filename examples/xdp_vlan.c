// SPDX-License-Identifier: GPL-2.0
/* Moves the start and the end of an XDP frame: pops or pushes an 802.1Q
 * tag with bpf_xdp_adjust_head, keeps a mark in the metadata area with
 * bpf_xdp_adjust_meta, trims and grows the tail with bpf_xdp_adjust_tail.
 * Every program reloads ctx->data / data_end after the helper (the old
 * pointers are invalid) and reads or writes the frame again, so a helper
 * that moved the wrong pointer shows in the verdict or the output frame. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* Frames whose tag was popped, pushed, or that took the error path. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} vlan_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&vlan_stats, &slot);

	if (n)
		*n += 1;
}

SEC("xdp")
int xdp_vlan_pop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan = data + sizeof(*eth);
	unsigned char macs[2 * ETH_ALEN];
	__be16 inner;

	if ((void *)(vlan + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q))
		return XDP_PASS;
	inner = vlan->encapsulated_proto;
	__builtin_memcpy(macs, eth, sizeof(macs));
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(*vlan))) {
		count(2);
		return XDP_ABORTED;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, macs, sizeof(macs));
	eth->h_proto = inner;
	count(0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_vlan_push(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan;
	unsigned char macs[2 * ETH_ALEN];
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q))
		return XDP_PASS;
	proto = eth->h_proto;
	__builtin_memcpy(macs, eth, sizeof(macs));
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*vlan))) {
		count(2);
		return XDP_ABORTED;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	vlan = data + sizeof(*eth);
	if ((void *)(vlan + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, macs, sizeof(macs));
	eth->h_proto = bpf_htons(ETH_P_8021Q);
	vlan->tci = bpf_htons(42);
	vlan->encapsulated_proto = proto;
	count(1);
	return XDP_PASS;
}

/* Drops the last 4 bytes (an FCS, say), then grows the frame by 8 zero
 * bytes and writes the new length into the first byte. */
SEC("xdp")
int xdp_tail(struct xdp_md *ctx)
{
	void *data, *data_end;

	if (bpf_xdp_adjust_tail(ctx, -4))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_tail(ctx, 8))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 1 > data_end)
		return XDP_ABORTED;
	*(__u8 *)data = (__u8)(data_end - data);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
