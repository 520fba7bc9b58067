// SPDX-License-Identifier: GPL-2.0
/* An IPv4 XDP firewall: TCP/UDP destination ports listed in a hash map are
 * dropped, everything else passes; per-protocol packet counts go to a
 * per-CPU array and the last dropped port to .bss. The drop verdict and the
 * "allow ICMP" switch are `const volatile` configuration.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 drop_action = XDP_DROP;
const volatile __u8 allow_icmp = 1;

__u16 last_blocked_port;
__u32 blocked_total;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&proto_count, &slot);

	if (c)
		*c += 1;
}

SEC("xdp")
int xdp_fw_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u16 dport;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(3);
		return XDP_PASS;
	}
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (ip->protocol == IPPROTO_ICMP) {
		count(2);
		return allow_icmp ? XDP_PASS : drop_action;
	}
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ip->ihl * 4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_DROP;
		dport = bpf_ntohs(tcp->dest);
		count(0);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)ip + ip->ihl * 4;

		if ((void *)(udp + 1) > data_end)
			return XDP_DROP;
		dport = bpf_ntohs(udp->dest);
		count(1);
	} else {
		return XDP_PASS;
	}
	if (bpf_map_lookup_elem(&blocked_ports, &dport)) {
		last_blocked_port = dport;
		blocked_total++;
		return drop_action;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
