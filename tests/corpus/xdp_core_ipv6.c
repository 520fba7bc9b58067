// SPDX-License-Identifier: GPL-2.0
/* vmlinux.h-style IPv6 parsing with CO-RE: copies the source address out of
 * the ipv6hdr (in6_addr unions), walks extension headers as ipv6_opt_hdr,
 * and uses bpf_core_field_exists / bpf_core_type_exists for a field and a
 * type the kernel may or may not have.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define ETH_P_IPV6 0x86DD

struct ipv6hdr___future {
	__u32 field_from_the_future;
} __attribute__((preserve_access_index));

struct pybpf_no_such_type {
	int x;
} __attribute__((preserve_access_index));

__u32 src_words[4];
__u8 final_proto;
__u8 hop_limit;
__u8 has_payload_len, has_future_field, has_missing_type;
__u32 ext_count;

SEC("xdp")
int xdp_core_ipv6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct ipv6_opt_hdr *opt;
	void *cursor;
	__u8 next;
	int i;

	has_payload_len = bpf_core_field_exists(ip6->payload_len);
	has_future_field = bpf_core_field_exists(struct ipv6hdr___future, field_from_the_future);
	has_missing_type = bpf_core_type_exists(struct pybpf_no_such_type);
	if ((void *)(ip6 + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	for (i = 0; i < 4; i++)
		src_words[i] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[i]);
	hop_limit = ip6->hop_limit;
	next = ip6->nexthdr;
	cursor = ip6 + 1;
	for (i = 0; i < 4; i++) {
		if (next != 0 && next != 43 && next != 60)
			break;
		opt = cursor;
		if ((void *)(opt + 1) > data_end)
			return XDP_DROP;
		next = opt->nexthdr;
		cursor += (opt->hdrlen + 1) << 3;
	}
	ext_count = i;
	final_proto = next;
	return hop_limit > 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
