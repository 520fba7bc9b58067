// SPDX-License-Identifier: GPL-2.0
/* Reserves 8 bytes of XDP metadata in front of the frame
 * (bpf_xdp_adjust_meta) and writes a mark and the EtherType there, for a
 * later tc program to read.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct meta {
	__u32 mark;
	__u16 proto;
	__u16 magic;
};

const volatile __u32 base_mark = 0x1000;
__u32 marked;

SEC("xdp")
int xdp_meta_mark(struct xdp_md *ctx)
{
	struct meta *m;
	struct ethhdr *eth;
	void *data, *data_end;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	m = (void *)(long)ctx->data_meta;
	eth = data;
	if ((void *)(m + 1) > data)
		return XDP_ABORTED;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	m->proto = eth->h_proto;
	m->mark = base_mark + (data_end - data);
	m->magic = 0xbeef;
	marked++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
