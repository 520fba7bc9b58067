// SPDX-License-Identifier: GPL-2.0
/* Two nested loops with 32-bit counters: the outer one bounded by a value
 * read from the packet (300..555 rounds), the inner one by a constant cap
 * and an early exit that depends on the outer counter. The kernel walks
 * both and accepts the program. */
#include "common.h"

SEC("xdp")
int loop_u32_nested(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *word = data;
	__u32 bound, n, d, found = 0;

	if ((void *)(word + 3) > data_end)
		return XDP_ABORTED;
	bound = 300 + (word[0] & 0xff);
	for (n = 2; n < bound; n++) {
		for (d = 2; d < 16; d++) {
			if (d * d > n)
				break;
			if (n % d == 0) {
				found++;
				break;
			}
		}
	}
	word[2] = found;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
