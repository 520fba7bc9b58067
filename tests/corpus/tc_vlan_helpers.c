// SPDX-License-Identifier: GPL-2.0
/* VLAN handling with the skb helpers: a frame carrying an 802.1Q tag in its
 * data has it popped (bpf_skb_vlan_pop); an untagged frame gets the
 * configured tag pushed (bpf_skb_vlan_push, which the kernel keeps as an
 * accelerated tag, outside the data). What the skb says afterwards is
 * recorded in .bss.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

const volatile __u16 push_vid = 100;

__u32 after_vlan_present, after_vlan_tci, after_len, after_protocol;
__s32 helper_rc;

SEC("tc")
int tc_vlan_helpers(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	long rc;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q))
		rc = bpf_skb_vlan_pop(skb);
	else
		rc = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), push_vid);
	helper_rc = rc;
	after_vlan_present = skb->vlan_present;
	after_vlan_tci = skb->vlan_tci;
	after_len = skb->len;
	after_protocol = bpf_ntohs(skb->protocol);
	return rc ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
