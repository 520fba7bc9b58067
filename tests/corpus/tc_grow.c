// SPDX-License-Identifier: GPL-2.0
/* Grows the packet by `amount` bytes with skb_change_head (op 0),
 * skb_change_tail (op 1) or bpf_skb_adjust_room (op 2): beyond the test
 * run's headroom and tailroom the kernel reallocates the skb, up to
 * BPF_SKB_MAX_LEN (16064 bytes), and refuses longer packets with -EINVAL.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
const volatile __u32 op = 0, amount = 0;
SEC("tc")
int grow(struct __sk_buff *skb)
{
	if (op == 0)
		return bpf_skb_change_head(skb, amount, 0);
	if (op == 1)
		return bpf_skb_change_tail(skb, amount, 0);
	return bpf_skb_adjust_room(skb, amount, BPF_ADJ_ROOM_MAC, 0);
}
char LICENSE[] SEC("license") = "GPL";
