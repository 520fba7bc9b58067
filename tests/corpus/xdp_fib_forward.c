// SPDX-License-Identifier: GPL-2.0
/* The forwarding skeleton of an XDP router: asks bpf_fib_lookup for the
 * next hop of the IPv4 destination and records the helper's answer. With
 * the test run's empty tables the answer is "no route" or "no neighbour";
 * the program then passes the frame to the stack.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif

__s32 last_rc = -100;
__u32 lookups;
__u32 last_ifindex;

SEC("xdp")
int xdp_fib_forward(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};
	long rc;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_PASS;
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	lookups++;
	last_rc = rc;
	last_ifindex = fib.ifindex;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_TX;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
