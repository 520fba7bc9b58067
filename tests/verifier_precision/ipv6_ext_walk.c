/* IPv6 extension headers: the offset grows by a header-given length in a bounded loop. */
#include "common.h"

struct ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

SEC("xdp")
int ipv6_ext_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 off = sizeof(struct ethhdr) + sizeof(*ip6);
	__u8 next;

	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	next = ip6->nexthdr;
	for (int i = 0; i < 4; i++) {
		struct ext *h;

		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
			break;
		if (off > 512)
			return XDP_PASS;
		h = data + off;
		if ((void *)(h + 1) > data_end)
			return XDP_PASS;
		next = h->nexthdr;
		off += (h->hdrlen + 1) * 8;
	}
	return next == IPPROTO_TCP ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
