// SPDX-License-Identifier: GPL-2.0
/* Flaw: hashes 0..n-1 where n is a 32-bit packet field: up to 4 billion
 * iterations (a non-affine recurrence, so clang cannot replace the loop by
 * a closed form). SAFE: n is capped at 64. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int loop_packet_unbounded(struct xdp_md *ctx)
{
	__u32 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 n, i, sum = 0;

	if ((void *)(data + 1) > data_end)
		return XDP_PASS;
	n = *data;
#ifdef SAFE
	if (n > 64)
		n = 64;
#endif
#pragma clang loop unroll(disable) vectorize(disable)
	for (i = 0; i < n; i++)
		sum = (sum ^ i) * 16777619;
	return sum & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
