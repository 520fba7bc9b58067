/* A subprogram given a packet pointer and a variable offset checks and reads it. */
#include "common.h"

static __attribute__((noinline)) int byte_at(unsigned char *data, void *data_end, __u32 off)
{
	unsigned char *p;

	if (off > 1500)
		return -1;
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return -1;
	return *p;
}

SEC("xdp")
int pkt_subprog_var(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int ihl = byte_at(data, data_end, sizeof(struct ethhdr));

	if (ihl < 0)
		return XDP_PASS;
	return byte_at(data, data_end, sizeof(struct ethhdr) + (ihl & 0xf) * 4) == 0 ? XDP_DROP
										       : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
