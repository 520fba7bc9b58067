// SPDX-License-Identifier: GPL-2.0
/* Destination NAT for one service: frames to `vip:vport` (UDP) are rewritten
 * to the backend address and port held in .data; the IPv4 and UDP checksums
 * are updated with bpf_csum_diff over the changed words.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __be32 vip = 0x0a00000a;		/* set by the loader */
const volatile __u16 vport = 53;

__be32 backend_addr = 0x0201a8c0;		/* 192.168.1.2 */
__u16 backend_port = 5353;
__u32 rewrites;

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

SEC("xdp")
int xdp_dnat_csum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__be32 old_addr, new_addr;
	__be32 old_port, new_port;
	__s64 diff;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->daddr != vip || udp->dest != bpf_htons(vport))
		return XDP_PASS;

	old_addr = ip->daddr;
	new_addr = backend_addr;
	diff = bpf_csum_diff(&old_addr, 4, &new_addr, 4, (__u16)~ip->check);
	ip->check = ~fold(diff);
	ip->daddr = new_addr;

	old_port = udp->dest;
	new_port = bpf_htons(backend_port);
	if (udp->check) {
		diff = bpf_csum_diff(&old_addr, 4, &new_addr, 4, (__u16)~udp->check);
		diff = bpf_csum_diff(&old_port, 4, &new_port, 4, diff);
		udp->check = ~fold(diff);
	}
	udp->dest = new_port;
	rewrites++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
