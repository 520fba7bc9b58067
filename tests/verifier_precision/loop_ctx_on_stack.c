/* A bpf_loop callback reading packet pointers from the caller's stack struct. */
#include "common.h"

struct walk {
	void *data;
	void *data_end;
	__u32 sum;
};

static long add_byte(__u32 i, void *arg)
{
	struct walk *w = arg;
	unsigned char *p = w->data;

	if (i >= 64)
		return 1;
	if ((void *)(p + i + 1) > w->data_end)
		return 1;
	w->sum += p[i];
	return 0;
}

SEC("xdp")
int loop_ctx_on_stack(struct xdp_md *ctx)
{
	struct walk w = {
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
		.sum = 0,
	};

	bpf_loop(64, add_byte, &w, 0);
	return w.sum & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
