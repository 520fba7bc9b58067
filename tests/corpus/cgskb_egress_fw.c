// SPDX-License-Identifier: GPL-2.0
/* A cgroup egress firewall: the program sees the packet from its IPv4
 * header (no Ethernet header); destinations listed in a hash map are
 * refused (return 0), bytes sent are counted per protocol and the socket's
 * view of the remote address (skb->remote_ip4, skb->family) is recorded.
 */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __be32);
	__type(value, __u32);
} denied SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} bytes_by_proto SEC(".maps");

__u32 last_family, last_remote;
__u32 refused;

SEC("cgroup_skb/egress")
int cgskb_egress_fw(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	__u32 proto, *deny;
	__u64 *bytes;

	last_family = skb->family;
	last_remote = bpf_ntohl(skb->remote_ip4);
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return 1;
	deny = bpf_map_lookup_elem(&denied, &ip->daddr);
	if (deny) {
		__sync_fetch_and_add(deny, 1);
		refused++;
		return 0;
	}
	proto = ip->protocol;
	bytes = bpf_map_lookup_elem(&bytes_by_proto, &proto);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
