// SPDX-License-Identifier: GPL-2.0
/* A compute-bound benchmark: 1000 iterations of integer mixing (xor-shift,
 * multiply, add) seeded from the first 8 bytes of the packet, so that the
 * compiler cannot fold the loop. The result is written into packet bytes
 * 8..11 (not read by the program, so repeated runs on the same buffer give
 * the same result) and its low bit picks the verdict. clang -O2 makes
 * the loop body 12 instructions (64-bit ALU with zero-extensions of the
 * u32 values): about 12,000 executed instructions per run. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ITERATIONS 1000

SEC("xdp")
int compute_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *word = data;
	__u32 acc, i;

	if ((void *)(word + 3) > data_end)
		return XDP_ABORTED;
	acc = word[0] ^ word[1];
	for (i = 0; i < ITERATIONS; i++)
		acc = ((acc ^ (acc >> 7)) * 0x9E3779B1u) + i;
	word[2] = acc;
	return (acc & 1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
