// SPDX-License-Identifier: GPL-2.0
/* Steers frames by skb->mark: a mark found in the `steer` array redirects
 * to that interface index (bpf_redirect gives TC_ACT_REDIRECT), mark 0
 * frames get bpf_skb_pull_data'd and a byte of their payload checked.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} steer SEC(".maps");

__u32 redirects, pulls;
__u8 byte20;

SEC("tc")
int tc_redirect_mark(struct __sk_buff *skb)
{
	__u32 key = skb->mark & 7, *ifindex;
	void *data, *data_end;

	if (skb->mark) {
		ifindex = bpf_map_lookup_elem(&steer, &key);
		if (ifindex && *ifindex) {
			redirects++;
			return bpf_redirect(*ifindex, 0);
		}
		return TC_ACT_UNSPEC;
	}
	if (bpf_skb_pull_data(skb, 21))
		return TC_ACT_SHOT;
	pulls++;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + 21 > data_end)
		return TC_ACT_SHOT;
	byte20 = ((__u8 *)data)[20];
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
