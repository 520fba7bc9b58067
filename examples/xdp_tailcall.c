// SPDX-License-Identifier: GPL-2.0
/* A tail-call dispatcher: the entry program tail-calls through a
 * PROG_ARRAY indexed by the IPv4 protocol number into a per-protocol
 * program, which counts into a map and gives the verdict. When the slot is
 * empty the tail call falls through and the dispatcher counts a miss and
 * passes. Exercises: BPF_MAP_TYPE_PROG_ARRAY, bpf_tail_call. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} dispatch SEC(".maps");

/* 0: not IPv4, 1: no program for the protocol, 2: tcp, 3: udp, 4: icmp */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&hits, &slot);

	if (count)
		__sync_fetch_and_add(count, 1);
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		hit(0);
		return XDP_PASS;
	}
	bpf_tail_call(ctx, &dispatch, ip->protocol);
	hit(1);
	return XDP_PASS;
}

SEC("xdp")
int xdp_tcp(struct xdp_md *ctx)
{
	hit(2);
	return XDP_PASS;
}

SEC("xdp")
int xdp_udp(struct xdp_md *ctx)
{
	hit(3);
	return XDP_PASS;
}

SEC("xdp")
int xdp_icmp(struct xdp_md *ctx)
{
	hit(4);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
