// SPDX-License-Identifier: GPL-2.0
/* Flaw: checks that 14 bytes are present, then reads byte 14 (the 15th).
 * SAFE: checks for 15 bytes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef SAFE
#define NEED 15
#else
#define NEED 14
#endif

SEC("xdp")
int pkt_read_off_by_one(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if ((void *)(data + NEED) > data_end)
		return XDP_PASS;
	return data[14] == 0x45 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
