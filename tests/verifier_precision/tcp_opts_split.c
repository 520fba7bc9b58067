/* TCP options read at opt + off + 1 after checking opt + off + 4: clang splits the pointer, the kernel rejects it. */
#include "common.h"

SEC("xdp")
int tcp_opts_split(struct xdp_md *ctx)
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
		if (off >= end || off > 40)
			break;
		if ((void *)(opt + off + 1) > data_end)
			break;
		if (opt[off] == 0)
			break;
		if (opt[off] == 1) {
			off++;
			continue;
		}
		if ((void *)(opt + off + 4) > data_end)
			break;
		if (opt[off] == 2 && opt[off + 1] == 4)
			return bpf_ntohs(*(__u16 *)(opt + off + 2)) < 536 ? XDP_DROP : XDP_PASS;
		if (opt[off + 1] < 2)
			break;
		off += opt[off + 1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
