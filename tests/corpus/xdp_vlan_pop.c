// SPDX-License-Identifier: GPL-2.0
/* Pops the outer 802.1Q tag: moves the MAC addresses 4 bytes forward and
 * shrinks the head with bpf_xdp_adjust_head. The popped TCI goes into .bss.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_ethhdr {
	__u8 dest[6];
	__u8 source[6];
	__be16 tpid;
	__be16 tci;
	__be16 encap_proto;
};

__u16 popped_tci;
__u32 pops;

SEC("xdp")
int xdp_vlan_pop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct vlan_ethhdr *veth = data;
	struct ethhdr *eth;
	__u8 macs[12];

	if ((void *)(veth + 1) > data_end)
		return XDP_PASS;
	if (veth->tpid != bpf_htons(ETH_P_8021Q))
		return XDP_PASS;
	popped_tci = bpf_ntohs(veth->tci);
	__builtin_memcpy(macs, veth, sizeof(macs));
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, macs, sizeof(macs));
	pops++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
