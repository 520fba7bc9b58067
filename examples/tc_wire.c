// SPDX-License-Identifier: GPL-2.0
/* A tc program for a bump in the wire (`pybpf tc attach`, docs/hooks.md):
 * counts IPv4 frames by protocol in `tc_stats`, drops (TC_ACT_SHOT) UDP
 * frames whose destination port is in `tc_blocked`, lets the rest through
 * (TC_ACT_OK). Runs on ingress or egress alike. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

enum { TC_FRAMES, TC_UDP, TC_ICMP, TC_DROPPED, TC_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16); /* host byte order */
	__type(value, __u8);
} tc_blocked SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&tc_stats, &what);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tc")
int tc_wire(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u16 port;

	count(TC_FRAMES);
	if ((void *)(ip + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_ICMP) {
		count(TC_ICMP);
		return TC_ACT_OK;
	}
	if (ip->protocol != IPPROTO_UDP || (void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	count(TC_UDP);
	port = bpf_ntohs(udp->dest);
	if (bpf_map_lookup_elem(&tc_blocked, &port)) {
		count(TC_DROPPED);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
