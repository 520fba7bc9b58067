// SPDX-License-Identifier: GPL-2.0
/* Flaw: bpf_skb_load_bytes into a 16-byte stack buffer with a length taken
 * from the packet (skb->len), unbounded. SAFE: length clamped to 1..16. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int helper_size_unbounded(struct __sk_buff *skb)
{
	char buf[16];
	__u32 len = skb->len;

#ifdef SAFE
	len = (len & 15) + 1;
#endif
	if (bpf_skb_load_bytes(skb, 0, buf, len) < 0)
		return TC_ACT_OK;
	return buf[0] == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
