// SPDX-License-Identifier: GPL-2.0
/* Counts packets per IP protocol in a hash map and drops UDP to a
 * configurable port (set in .rodata before loading, as a libbpf skeleton
 * would). Exercises: BTF-defined maps, global data (.rodata, .bss),
 * a bpf-to-bpf call and packet bounds checks. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

const volatile __u16 blocked_port = 53;
__u64 packets_seen = 0;

static __attribute__((noinline)) int udp_dport(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return -1;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return -1;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 key;
	__u64 one = 1, *val;

	__sync_fetch_and_add(&packets_seen, 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	key = ip->protocol;
	val = bpf_map_lookup_elem(&proto_count, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&proto_count, &key, &one, BPF_ANY);
	if (ip->protocol == IPPROTO_UDP && udp_dport(data, data_end) == blocked_port)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
