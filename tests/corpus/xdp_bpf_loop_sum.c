// SPDX-License-Identifier: GPL-2.0
/* Sums and XORs the first bytes of the payload with bpf_loop: the callback
 * reads one byte per iteration through bpf_xdp_load_bytes and stops early
 * at a 0xff byte. The results go to .bss.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 max_bytes = 64;

struct loop_ctx {
	struct xdp_md *xdp;
	__u32 sum;
	__u8 x;
	__u32 stopped_at;
};

__u32 byte_sum;
__u8 byte_xor;
__u32 stopped_at;
__u32 iterations;

static long sum_byte(__u32 index, void *data)
{
	struct loop_ctx *lc = data;
	__u8 b;

	if (bpf_xdp_load_bytes(lc->xdp, index, &b, 1))
		return 1;
	if (b == 0xff) {
		lc->stopped_at = index;
		return 1;
	}
	lc->sum += b;
	lc->x ^= b;
	return 0;
}

SEC("xdp")
int xdp_bpf_loop_sum(struct xdp_md *ctx)
{
	struct loop_ctx lc = { .xdp = ctx, .stopped_at = ~0U };
	long n;

	n = bpf_loop(max_bytes, sum_byte, &lc, 0);
	if (n < 0)
		return XDP_ABORTED;
	iterations = n;
	byte_sum = lc.sum;
	byte_xor = lc.x;
	stopped_at = lc.stopped_at;
	return lc.sum & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
