// SPDX-License-Identifier: GPL-2.0
/* Truncates frames longer than `snap_len` with bpf_xdp_adjust_tail (a
 * packet sampler), and pads odd-length short frames by one byte.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 snap_len = 64;

__u32 trimmed, padded;
__s32 last_delta;

SEC("xdp")
int xdp_trim_tail(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	int delta = 0;

	if (len > snap_len)
		delta = (int)snap_len - (int)len;
	else if (len & 1)
		delta = 1;
	if (!delta)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, delta))
		return XDP_ABORTED;
	last_delta = delta;
	if (delta < 0)
		trimmed++;
	else
		padded++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
