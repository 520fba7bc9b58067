// SPDX-License-Identifier: GPL-2.0
/* Makes room for an 8-byte shim header after the IPv4 header
 * (bpf_skb_adjust_room, BPF_ADJ_ROOM_NET) and writes it with
 * bpf_skb_store_bytes; a frame that already carries the shim (marked by
 * the IP protocol 253) has it removed again with a negative delta.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SHIM_PROTO 253

struct shim {
	__u8 magic[4];
	__be32 tag;
};

const volatile __u32 shim_tag = 0xc0ffee;
__u32 grown, shrunk;
__s32 last_rc = 1;

SEC("tc")
int tc_adjust_room(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct shim s = { .magic = { 'S', 'H', 'I', 'M' } };
	long rc;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_OK;
	if (ip->protocol == SHIM_PROTO) {
		rc = bpf_skb_adjust_room(skb, -(int)sizeof(s), BPF_ADJ_ROOM_NET, 0);
		last_rc = rc;
		if (!rc)
			shrunk++;
		return rc ? TC_ACT_SHOT : TC_ACT_OK;
	}
	rc = bpf_skb_adjust_room(skb, sizeof(s), BPF_ADJ_ROOM_NET, 0);
	last_rc = rc;
	if (rc)
		return TC_ACT_SHOT;
	s.tag = bpf_htonl(shim_tag);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(struct iphdr), &s, sizeof(s), 0))
		return TC_ACT_SHOT;
	grown++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
