// SPDX-License-Identifier: GPL-2.0
/* Answers ICMP echo requests in place: swaps MAC and IP addresses, turns the
 * request into a reply, fixes the ICMP checksum, and sends the frame back
 * out with XDP_TX. Everything else passes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

struct icmp_echo_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};

__u64 replies;
__u16 last_seq;

static __always_inline void swap_mac(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

SEC("xdp")
int xdp_icmp_reply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct icmp_echo_hdr *icmp;
	__be32 addr;
	__u32 sum;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_ICMP || ip->ihl != 5)
		return XDP_PASS;
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > data_end || icmp->type != ICMP_ECHO)
		return XDP_PASS;

	swap_mac(eth);
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	ip->ttl = 64;
	/* ttl changed: recompute the IP header checksum from scratch */
	ip->check = 0;
	sum = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum;
	/* type 8 -> 0: the checksum grows by 0x0800 */
	icmp->type = ICMP_ECHOREPLY;
	sum = (__u16)~icmp->checksum + (__u16)~bpf_htons(0x0800);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->checksum = ~sum;
	last_seq = bpf_ntohs(icmp->sequence);
	replies++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
