// SPDX-License-Identifier: GPL-2.0
/* A parser split into bpf-to-bpf calls that take packet pointers: each
 * function checks its header against data_end and returns the next offset
 * (or -1). The UDP source/destination ports are swapped in place.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

__u32 l3_off, l4_off;
__u32 swapped;

static __noinline int parse_eth(void *data, void *data_end, __u16 *proto)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	*proto = bpf_ntohs(eth->h_proto);
	return sizeof(*eth);
}

static __noinline int parse_ipv4(void *data, void *data_end, __u32 off, __u8 *proto)
{
	struct iphdr *ip;

	if (off > 64)
		return -1;
	ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return -1;
	if (ip->ihl < 5)
		return -1;
	*proto = ip->protocol;
	return off + ip->ihl * 4;
}

static __noinline int swap_udp_ports(void *data, void *data_end, __u32 off)
{
	struct udphdr *udp;
	__be16 tmp;

	if (off > 128)
		return -1;
	udp = data + off;
	if ((void *)(udp + 1) > data_end)
		return -1;
	tmp = udp->source;
	udp->source = udp->dest;
	udp->dest = tmp;
	return 0;
}

SEC("xdp")
int xdp_subprog_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 eth_proto = 0;
	__u8 ip_proto = 0;
	int off;

	off = parse_eth(data, data_end, &eth_proto);
	if (off < 0)
		return XDP_DROP;
	if (eth_proto != ETH_P_IP)
		return XDP_PASS;
	l3_off = off;
	off = parse_ipv4(data, data_end, off, &ip_proto);
	if (off < 0)
		return XDP_DROP;
	l4_off = off;
	if (ip_proto != IPPROTO_UDP)
		return XDP_PASS;
	if (swap_udp_ports(data, data_end, off))
		return XDP_DROP;
	swapped++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
