/* A histogram on the stack indexed by a branch-bounded value inside a loop. */
#include "common.h"

SEC("xdp")
int stack_var_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	__u32 hist[16];
	__u32 best = 0;

	__builtin_memset(hist, 0, sizeof(hist));
	for (int i = 0; i < 32; i++) {
		__u32 v;

		if ((void *)(p + i + 1) > data_end)
			break;
		v = p[i] >> 4;
		if (v >= 16)
			continue;
		hist[v]++;
	}
	for (int i = 0; i < 16; i++)
		if (hist[i] > best)
			best = hist[i];
	return best > 8 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
