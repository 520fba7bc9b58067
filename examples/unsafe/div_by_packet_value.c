// SPDX-License-Identifier: GPL-2.0
/* Divides by a packet byte that may be zero. eBPF defines x / 0 = 0 and
 * x % 0 = x, so the kernel accepts this; PREVAIL rejects it only when
 * asked to (a possibly-zero divisor is a bug, not a safety violation). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int div_by_packet_value(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if ((void *)(data + 1) > data_end)
		return XDP_PASS;
	return 1000u / data[0] > 10 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
