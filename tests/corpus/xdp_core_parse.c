// SPDX-License-Identifier: GPL-2.0
/* A vmlinux.h-style XDP program: the packet headers come from the kernel's
 * BTF types (preserve_access_index), so every field access is a CO-RE
 * relocation — including tcphdr bitfields and iphdr's saddr/daddr, which
 * sit in an anonymous union in the kernel's type but not in ours.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6

const volatile __u16 ssh_port = 22;
const volatile bool drop_syn_to_ssh = true;

__u32 last_saddr, last_daddr;
__u8 last_doff, last_flags;
__u64 syn_seen;

SEC("xdp")
int xdp_core_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	last_saddr = bpf_ntohl(ip->saddr);
	last_daddr = bpf_ntohl(ip->daddr);
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_DROP;
	last_doff = tcp->doff;
	last_flags = tcp->syn | tcp->ack << 1 | tcp->fin << 2 | tcp->rst << 3;
	if (tcp->syn && !tcp->ack) {
		syn_seen++;
		if (drop_syn_to_ssh && tcp->dest == bpf_htons(ssh_port))
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
