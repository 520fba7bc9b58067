// SPDX-License-Identifier: GPL-2.0
/* A rate limiter without clocks: each IPv4 source is hashed into one of 64
 * buckets of a per-CPU array; a bucket counts the packets it has seen and
 * the program drops once the count passes `limit` (in .rodata, set before
 * loading). A second per-CPU array counts passed and dropped packets.
 * No time is read, so a run is deterministic and comparable between
 * pybpf and the kernel. Exercises: BPF_MAP_TYPE_PERCPU_ARRAY, .rodata. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BUCKETS 64

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} buckets SEC(".maps");

/* 0: passed, 1: dropped */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

const volatile __u64 limit = 3;

static __always_inline __u32 bucket_of(__u32 addr)
{
	/* Knuth's multiplicative hash, top 6 bits */
	return (addr * 2654435761u) >> 26;
}

static __always_inline void count(__u32 which)
{
	__u64 *total = bpf_map_lookup_elem(&totals, &which);

	if (total)
		*total += 1;
}

SEC("xdp")
int xdp_ratelimit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 key;
	__u64 *seen;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	key = bucket_of(bpf_ntohl(ip->saddr));
	seen = bpf_map_lookup_elem(&buckets, &key);
	if (!seen)
		return XDP_ABORTED;
	*seen += 1;
	if (*seen > limit) {
		count(1);
		return XDP_DROP;
	}
	count(0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
