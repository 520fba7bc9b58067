// SPDX-License-Identifier: GPL-2.0
/* vmlinux.h-style tc program reading and writing __sk_buff through CO-RE:
 * len, protocol, pkt_type, cb[], mark, priority, tc_classid; also
 * bpf_core_field_exists/bpf_core_field_size on fields newer kernels added.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1

struct __sk_buff___old {
	__u32 len;
	__u32 field_that_never_was;
} __attribute__((preserve_access_index));

__u32 seen_len, seen_proto, seen_pkt_type, seen_cb0, seen_mark;
__u32 hwtstamp_size, has_tstamp_type, has_never;
__u64 runs;

SEC("tc")
int tc_core_skb(struct __sk_buff *skb)
{
	seen_len = skb->len;
	seen_proto = bpf_ntohs(skb->protocol);
	seen_pkt_type = skb->pkt_type;
	seen_cb0 = skb->cb[0];
	seen_mark = skb->mark;
	hwtstamp_size = bpf_core_field_size(skb->hwtstamp);
	has_tstamp_type = bpf_core_field_exists(skb->tstamp_type);
	has_never = bpf_core_field_exists(((struct __sk_buff___old *)skb)->field_that_never_was);
	skb->cb[1] = skb->cb[0] * 2 + 1;
	skb->mark = skb->mark ^ 0xa5a5;
	skb->priority = skb->len & 7;
	skb->tc_classid = 0x10002;
	runs++;
	return skb->cb[0] > 10 ? TC_ACT_RECLASSIFY : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
