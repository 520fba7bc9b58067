// SPDX-License-Identifier: GPL-2.0
/* Rewrites the UDP destination port from `from_port` to `to_port` with
 * bpf_skb_store_bytes and fixes the UDP checksum with bpf_l4_csum_replace;
 * counts rewrites per original source port in a hash map.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define UDP_OFF (ETH_HLEN + sizeof(struct iphdr))

const volatile __u16 from_port = 8080;
const volatile __u16 to_port = 80;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);
	__type(value, __u32);
} by_sport SEC(".maps");

SEC("tc")
int tc_udp_port_nat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__be16 old_port, new_port = bpf_htons(to_port);
	__u16 sport;
	__u32 one = 1, *n;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(from_port))
		return TC_ACT_OK;
	old_port = udp->dest;
	sport = bpf_ntohs(udp->source);
	if (bpf_l4_csum_replace(skb, UDP_OFF + offsetof(struct udphdr, check), old_port,
				new_port, sizeof(new_port)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, dest), &new_port,
				sizeof(new_port), 0))
		return TC_ACT_SHOT;
	n = bpf_map_lookup_elem(&by_sport, &sport);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&by_sport, &sport, &one, BPF_ANY);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
