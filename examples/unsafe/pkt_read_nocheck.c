// SPDX-License-Identifier: GPL-2.0
/* Flaw: reads the ethertype without comparing against data_end.
 * SAFE: the usual bounds check first. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pkt_read_nocheck(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;

#ifdef SAFE
	void *data_end = (void *)(long)ctx->data_end;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
#endif
	return eth->h_proto == 0x0008 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
