// SPDX-License-Identifier: GPL-2.0
/* IPv4 headers with options: the header length comes from IHL, the options
 * are walked in a bounded loop over an offset (EOL, NOP, and
 * type-length-value ones) to find a Router Alert,
 * and the L4 ports are read after the variable-length header.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

__u8 saw_router_alert;
__u8 option_count;
__u16 sport, dport;
__u32 hdr_len;

SEC("xdp")
int xdp_ipv4_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u32 ihl_bytes, off = 0;
	int i;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ihl_bytes = ip->ihl * 4;
	if (ihl_bytes < sizeof(*ip))
		return XDP_DROP;
	hdr_len = ihl_bytes;
	saw_router_alert = 0;
	option_count = 0;
	for (i = 0; i < 10; i++) {
		__u8 *opt;

		if (off + sizeof(*ip) >= ihl_bytes || off > 36)
			break;
		opt = (__u8 *)(ip + 1) + off;
		if ((void *)(opt + 2) > data_end)
			break;
		if (opt[0] == 0)
			break;
		option_count++;
		if (opt[0] == 1) {
			off++;
			continue;
		}
		if (opt[1] < 2)
			return XDP_DROP;
		if (opt[0] == 148)
			saw_router_alert = 1;
		off += opt[1];
	}
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udp = (void *)ip + ihl_bytes;
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;
	sport = bpf_ntohs(udp->source);
	dport = bpf_ntohs(udp->dest);
	return saw_router_alert ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
