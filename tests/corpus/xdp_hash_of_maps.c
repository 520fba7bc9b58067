// SPDX-License-Identifier: GPL-2.0
/* A hash of maps keyed by IP protocol, each inner map a per-port hash
 * declared in BTF; libbpf creates the template from `__array(values, ...)`
 * and fills two slots. Unknown protocols are dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct port_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);
	__type(value, __u32);
};

struct port_table tcp_ports SEC(".maps");
struct port_table udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct port_table);
} by_proto SEC(".maps") = {
	.values = { [IPPROTO_TCP] = &tcp_ports, [IPPROTO_UDP] = &udp_ports },
};

SEC("xdp")
int xdp_hash_of_maps(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *l4 = (void *)(ip + 1);
	__u32 one = 1, *hits;
	void *ports;
	__u16 dport;
	__u32 proto;

	if ((void *)(l4 + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = ip->protocol;
	ports = bpf_map_lookup_elem(&by_proto, &proto);
	if (!ports)
		return XDP_DROP;
	dport = bpf_ntohs(l4->dest);
	hits = bpf_map_lookup_elem(ports, &dport);
	if (hits)
		(*hits)++;
	else
		bpf_map_update_elem(ports, &dport, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
