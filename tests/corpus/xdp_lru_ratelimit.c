// SPDX-License-Identifier: GPL-2.0
/* Per-source packet budget in an LRU hash: each IPv4 source may send
 * `budget` frames, then its frames are dropped. Counters of passed and
 * dropped frames live in .data (initialised non-zero on purpose).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 budget = 2;

struct source_state {
	__u32 packets;
	__u32 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);
	__type(value, struct source_state);
} sources SEC(".maps");

__u64 passed = 100;
__u64 dropped = 200;

SEC("xdp")
int xdp_lru_ratelimit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct source_state *st, fresh = {};
	__be32 src;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	src = ip->saddr;
	st = bpf_map_lookup_elem(&sources, &src);
	if (!st) {
		fresh.packets = 1;
		fresh.bytes = data_end - data;
		bpf_map_update_elem(&sources, &src, &fresh, BPF_ANY);
		passed++;
		return XDP_PASS;
	}
	st->packets++;
	st->bytes += data_end - data;
	if (st->packets > budget) {
		dropped++;
		return XDP_DROP;
	}
	passed++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
