// SPDX-License-Identifier: GPL-2.0
/* Flaw: checks for an Ethernet header, then writes the first IPv4 byte
 * behind it. SAFE: checks for the IPv4 byte too. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pkt_write_past_end(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

#ifdef SAFE
	if ((void *)(data + ETH_HLEN + 1) > data_end)
#else
	if ((void *)(data + ETH_HLEN) > data_end)
#endif
		return XDP_PASS;
	data[ETH_HLEN] = 0x45;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
