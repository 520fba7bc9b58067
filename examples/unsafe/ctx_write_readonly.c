// SPDX-License-Identifier: GPL-2.0
/* Flaw: a tc program writes skb->len, which is read-only.
 * SAFE: writes skb->mark, which tc programs may set. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int ctx_write_readonly(struct __sk_buff *skb)
{
#ifdef SAFE
	skb->mark = 7;
#else
	skb->len = 7;
#endif
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
