/* A stack write through an index the program never bounds: the kernel rejects it. */
#include "common.h"

SEC("xdp")
int stack_var_unbounded(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char counts[32];
	unsigned char *p = data;

	__builtin_memset(counts, 0, sizeof(counts));
	if ((void *)(p + 2) > data_end)
		return XDP_PASS;
	counts[p[0]] = 1;
	return counts[p[1] & 31] ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
