// SPDX-License-Identifier: GPL-2.0
/* A tc program that rewrites headers and fixes the checksums: it
 * decrements the IPv4 TTL (dropping at 1, as a router would), fixing the
 * IP header checksum with bpf_l3_csum_replace, and rewrites UDP destination
 * port `from_port` to `to_port` (in .rodata) with bpf_skb_store_bytes,
 * fixing the UDP checksum with bpf_l4_csum_replace. Exercises: SEC("tc"),
 * __sk_buff, skb_load_bytes/store_bytes and the checksum helpers. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_OFF sizeof(struct ethhdr)
#define TTL_OFF (IP_OFF + offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define UDP_OFF (IP_OFF + sizeof(struct iphdr))
#define UDP_DPORT_OFF (UDP_OFF + offsetof(struct udphdr, dest))
#define UDP_CSUM_OFF (UDP_OFF + offsetof(struct udphdr, check))

const volatile __u16 from_port = 53;
const volatile __u16 to_port = 5353;
__u64 rewritten = 0;

SEC("tc")
int tc_rewrite(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u16 old_ttl_word, new_ttl_word, old_port, new_port;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0)
		return TC_ACT_OK;
	if (ip.ihl != 5)
		return TC_ACT_OK;
	if (ip.ttl <= 1)
		return TC_ACT_SHOT;

	/* TTL shares a 16-bit checksum word with the protocol */
	old_ttl_word = *(__u16 *)&ip.ttl;
	ip.ttl--;
	new_ttl_word = *(__u16 *)&ip.ttl;
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ttl_word, new_ttl_word, 2);
	bpf_skb_store_bytes(skb, TTL_OFF, &ip.ttl, 1, 0);

	if (ip.protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, UDP_DPORT_OFF, &old_port, sizeof(old_port)) < 0)
		return TC_ACT_OK;
	if (old_port != bpf_htons(from_port))
		return TC_ACT_OK;
	new_port = bpf_htons(to_port);
	bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_port, new_port,
			    BPF_F_PSEUDO_HDR | sizeof(new_port));
	bpf_skb_store_bytes(skb, UDP_DPORT_OFF, &new_port, sizeof(new_port), 0);
	__sync_fetch_and_add(&rewritten, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
