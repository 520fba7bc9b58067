// SPDX-License-Identifier: GPL-2.0
/* vmlinux.h-style cgroup ingress accounting through CO-RE: the address
 * family and local address come from __sk_buff, the hop limit / TTL from
 * the packet (iphdr or ipv6hdr). IPv6 from a blocked /64 is refused.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

const volatile __u32 blocked_prefix_hi = 0x20010db8;

__u64 v4_packets, v6_packets, v4_bytes, v6_bytes;
__u32 last_local_ip6[4];
__u8 last_ttl;

SEC("cgroup_skb/ingress")
int cgskb_ingress_core(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (skb->family == AF_INET) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > data_end)
			return 0;
		v4_packets++;
		v4_bytes += skb->len;
		last_ttl = ip->ttl;
		return 1;
	}
	if (skb->family == AF_INET6) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		v6_packets++;
		v6_bytes += skb->len;
		last_ttl = ip6->hop_limit;
		/* one access per element: the context may not be indexed */
		last_local_ip6[0] = bpf_ntohl(skb->local_ip6[0]);
		last_local_ip6[1] = bpf_ntohl(skb->local_ip6[1]);
		last_local_ip6[2] = bpf_ntohl(skb->local_ip6[2]);
		last_local_ip6[3] = bpf_ntohl(skb->local_ip6[3]);
		if (bpf_ntohl(ip6->saddr.in6_u.u6_addr32[0]) == blocked_prefix_hi)
			return 0;
		return 1;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
