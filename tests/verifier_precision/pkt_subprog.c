/* Packet pointers passed to a bpf-to-bpf subprogram that checks and reads them. */
#include "common.h"

static __attribute__((noinline)) int ip_proto(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > data_end)
		return -1;
	return ip->protocol;
}

SEC("xdp")
int pkt_subprog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return ip_proto(data, data_end) == IPPROTO_TCP ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
