// SPDX-License-Identifier: GPL-2.0
/* A tc classifier that re-marks IPv4 DSCP by destination port class
 * (bpf_skb_store_bytes for the TOS byte, bpf_l3_csum_replace for the header
 * checksum) and sets skb->mark and skb->priority for later qdiscs.
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

#define TOS_OFF (ETH_HLEN + offsetof(struct iphdr, tos))
#define CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

const volatile __u16 voice_port = 5060;
const volatile __u8 voice_dscp = 46;
const volatile __u8 bulk_dscp = 8;

__u32 remarked;
__u8 last_old_tos;

SEC("tc")
int tc_dscp_mark(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 old_tos, new_tos, dscp;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl != 5 || (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP))
		return TC_ACT_OK;
	dscp = udp->dest == bpf_htons(voice_port) ? voice_dscp : bulk_dscp;
	old_tos = ip->tos;
	new_tos = (dscp << 2) | (old_tos & 3);
	if (new_tos == old_tos)
		return TC_ACT_OK;
	if (bpf_l3_csum_replace(skb, CSUM_OFF, bpf_htons(old_tos), bpf_htons(new_tos), 2))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, TOS_OFF, &new_tos, 1, 0))
		return TC_ACT_SHOT;
	skb->mark = 0x100 | dscp;
	skb->priority = dscp >> 3;
	last_old_tos = old_tos;
	remarked++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
