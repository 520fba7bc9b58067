/* TCP options: kind/length pairs walked in a bounded loop, the MSS option read. */
#include "common.h"

SEC("xdp")
int tcp_opts_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	unsigned char *opt;
	__u32 off = 0, end;

	if ((void *)(tcp + 1) > data_end || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	end = tcp->doff * 4 - sizeof(*tcp);
	opt = (void *)(tcp + 1);
	for (int i = 0; i < 10; i++) {
		unsigned char *p;

		if (off >= end || off > 40)
			break;
		p = opt + off;
		if ((void *)(p + 4) > data_end)
			break;
		if (p[0] == 0)
			break;
		if (p[0] == 1) {
			off++;
			continue;
		}
		if (p[0] == 2 && p[1] == 4)
			return bpf_ntohs(*(__u16 *)(p + 2)) < 536 ? XDP_DROP : XDP_PASS;
		if (p[1] < 2)
			break;
		off += p[1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
