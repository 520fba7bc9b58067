// category: packet — direct packet access against data_end
#include "common.h"

// checks 14 bytes against data_end, reads the EtherType
SEC("xdp") int ok_pkt_eth(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_DROP : XDP_PASS;
}
// reads the EtherType with no data_end check
SEC("xdp") int bad_pkt_nocheck(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_DROP : XDP_PASS;
}
// checks 14 bytes, then reads byte 14
SEC("xdp") int bad_pkt_off_by_one(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_PASS;
	return data[14];
}
// udp + bpf_ntohs(udp->len) compared with data_end (a large unknown offset), then a checked read
SEC("xdp") int ok_pkt_udp_len(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	if ((void *)udp + bpf_ntohs(udp->len) > end)
		return XDP_DROP;
	return udp->dest == bpf_htons(53) ? XDP_DROP : XDP_PASS;
}
// reads 8 bytes past a checked udp header (the length check does not cover them)
SEC("xdp") int bad_pkt_udp_payload_unchecked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	return *(__u32 *)(udp + 1) ? XDP_DROP : XDP_PASS;
}
// IPv4 header length (ihl * 4) as a variable offset, checked before the TCP header is read
SEC("xdp") int ok_pkt_ihl_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return XDP_PASS;
	return tcp->syn ? XDP_DROP : XDP_PASS;
}
// a 32-bit packet value as offset: too large for a packet pointer, even when checked after
SEC("xdp") int bad_pkt_offset_unbounded(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 4 > end)
		return XDP_PASS;
	unsigned char *p = data + *(__u32 *)data;
	if (p + 1 > end)
		return XDP_PASS;
	return *p;
}
// reads byte 999 after checking 1000 bytes
SEC("xdp") int ok_pkt_large_const(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1000 > end)
		return XDP_PASS;
	return data[999] & 3;
}
// reads the byte before the packet start
SEC("xdp") int bad_pkt_before_start(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_PASS;
	return *(volatile unsigned char *)(data - 1);
}
// writes the MAC addresses after the check
SEC("xdp") int ok_pkt_write(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 12 > end)
		return XDP_PASS;
	for (int i = 0; i < 6; i++) {
		unsigned char t = data[i];
		data[i] = data[i + 6];
		data[i + 6] = t;
	}
	return XDP_TX;
}
// uses a packet pointer taken before bpf_xdp_adjust_head (the helper invalidates it)
SEC("xdp") int bad_pkt_after_adjust_head(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_PASS;
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_PASS;
	return data[0];
}
// reloads data/data_end after bpf_xdp_adjust_head and checks again
SEC("xdp") int ok_pkt_after_adjust_head(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_PASS;
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_PASS;
	return data[0] & 3;
}
// tc: reads the IP protocol after a check against skb->data_end
SEC("tc") int ok_pkt_tc_read(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return 0;
	return ip->protocol == IPPROTO_TCP ? 2 : 0;
}
// cgroup_skb may read packet data but not write it
SEC("cgroup_skb/egress") int bad_pkt_cgskb_write(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + 1 > end)
		return 1;
	data[0] = 0;
	return 1;
}
// cgroup_skb reads packet data after a check
SEC("cgroup_skb/egress") int ok_pkt_cgskb_read(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + 1 > end)
		return 1;
	return data[0] != 0x45 ? 1 : 0;
}
// TCP options walk: the offset grows in a bounded loop, each option checked against data_end
SEC("xdp") int ok_pkt_tcp_options(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	unsigned char *opt = data + 54;
	int mss = 0;
	for (int i = 0; i < 10; i++) {
		if (opt + 1 > end)
			break;
		if (opt[0] == 0)
			break;
		if (opt[0] == 1) {
			opt++;
			continue;
		}
		if (opt + 2 > end)
			break;
		unsigned char len = opt[1];
		if (opt[0] == 2 && len == 4) {
			if (opt + 4 > end)
				break;
			mss = (opt[2] << 8) | opt[3];
			break;
		}
		if (len < 2)
			break;
		opt += len;
	}
	return mss > 1000 ? XDP_PASS : XDP_DROP;
}
// IPv6 extension header walk: the next header's length moves the cursor in a bounded loop
SEC("xdp") int ok_pkt_ipv6_ext_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	__u8 next = ip6->nexthdr;
	unsigned char *cur = (void *)(ip6 + 1);
	for (int i = 0; i < 4; i++) {
		if (next != 0 && next != 43 && next != 60)
			break;
		if ((void *)(cur + 2) > end)
			return XDP_DROP;
		next = cur[0];
		cur += (cur[1] + 1) * 8;
	}
	return next == IPPROTO_TCP ? XDP_PASS : XDP_DROP;
}
// the same walk without a check before reading each header
SEC("xdp") int bad_pkt_ipv6_ext_unchecked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	__u8 next = ip6->nexthdr;
	unsigned char *cur = (void *)(ip6 + 1);
	for (int i = 0; i < 4; i++) {
		if (next != 0 && next != 43 && next != 60)
			break;
		next = cur[0];
		cur += (cur[1] + 1) * 8;
	}
	return next == IPPROTO_TCP ? XDP_PASS : XDP_DROP;
}
// stores a packet pointer into the stack and reads through it after a fill
SEC("xdp") int ok_pkt_spill_fill(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	unsigned char *volatile slot = data;
	if (data + 2 > end)
		return XDP_PASS;
	unsigned char *p = slot;
	if (p + 2 > end)
		return XDP_PASS;
	return p[1] & 1;
}

char _license[] SEC("license") = "GPL";
