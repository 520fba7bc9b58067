// SPDX-License-Identifier: GPL-2.0
/* A division-bound benchmark: counts the primes below a bound by trial
 * division. The bound is BASE_BOUND plus the packet's first byte, so the
 * compiler can fold neither the bound nor the count. Each candidate n is
 * divided by 2, 3, 4, ... until a divisor is found or d * d passes n; the
 * divisor loop has a constant cap (MAX_DIVISOR, whose square exceeds every
 * bound) so that a verifier can bound it without knowing n. The count is
 * written into packet bytes 8..11 (not read by the program, so repeated runs
 * on the same buffer give the same result). The verdict is always XDP_PASS:
 * a verdict that depended on the count would make Linux's verifier track the
 * count precisely, and it could no longer prune the paths of the divisor
 * loop's early exits (the program would pass its 1M-instruction limit).
 * No helpers. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BASE_BOUND 1000
#define MAX_DIVISOR 64

SEC("xdp")
int trial_division(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *word = data;
	__u64 bound, n, d;
	__u32 primes = 0;

	if ((void *)(word + 3) > data_end)
		return XDP_ABORTED;
	bound = BASE_BOUND + (word[0] & 0xff);
	for (n = 2; n < bound; n++) {
		__u32 prime = 1;

		for (d = 2; d < MAX_DIVISOR; d++) {
			if (d * d > n)
				break;
			if (n % d == 0) {
				prime = 0;
				break;
			}
		}
		primes += prime;
	}
	word[2] = primes;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
