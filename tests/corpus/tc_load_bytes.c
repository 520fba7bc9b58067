// SPDX-License-Identifier: GPL-2.0
/* Reads headers with bpf_skb_load_bytes (no direct packet access): the IPv4
 * header, then the transport ports at the offset IHL gives, into stack
 * buffers; the 5-tuple is hashed and counted in a hash map.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct tuple {
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, struct tuple);
	__type(value, __u64);
} flows SEC(".maps");

__u32 load_errors;

SEC("tc")
int tc_load_bytes(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct tuple t = {};
	__be16 ports[2];
	__u64 one = 1, *n;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip))) {
		load_errors++;
		return TC_ACT_OK;
	}
	t.saddr = ip.saddr;
	t.daddr = ip.daddr;
	t.proto = ip.protocol;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + (ip.ihl & 0xf) * 4, ports, sizeof(ports))) {
		load_errors++;
		return TC_ACT_SHOT;
	}
	t.sport = ports[0];
	t.dport = ports[1];
	n = bpf_map_lookup_elem(&flows, &t);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&flows, &t, &one, BPF_ANY);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
