/* A packet pointer plus an unknown 16-bit length compared with data_end. */
#include "common.h"

SEC("xdp")
int pkt_var_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if ((void *)udp + bpf_ntohs(udp->len) > data_end)
		return XDP_DROP; /* truncated datagram */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
