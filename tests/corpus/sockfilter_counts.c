// SPDX-License-Identifier: GPL-2.0
/* A socket filter that counts packets per IP protocol in an array and per
 * TCP flag combination in a hash (bpf_skb_load_bytes from the network
 * header), and accepts whole packets only for TCP.
 */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} per_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u8);
	__type(value, __u32);
} tcp_flags SEC(".maps");

SEC("socket")
int sockfilter_counts(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u32 proto, *n, one = 1;
	__u8 flags;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
		return 0;
	proto = ip.protocol;
	n = bpf_map_lookup_elem(&per_proto, &proto);
	if (n)
		__sync_fetch_and_add(n, 1);
	if (proto != IPPROTO_TCP)
		return 0;
	if (bpf_skb_load_bytes(skb, (ip.ihl & 0xf) * 4 + 13, &flags, 1))
		return 0;
	n = bpf_map_lookup_elem(&tcp_flags, &flags);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&tcp_flags, &flags, &one, BPF_NOEXIST);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
