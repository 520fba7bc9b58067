// SPDX-License-Identifier: GPL-2.0
/* Per-protocol statistics in hash map values guarded by a bpf_spin_lock
 * (BTF-declared): packets, bytes and the largest frame are updated together
 * under the lock.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct stats {
	struct bpf_spin_lock lock;
	__u32 packets;
	__u64 bytes;
	__u32 largest;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);
	__type(value, struct stats);
} by_ethertype SEC(".maps");

SEC("xdp")
int xdp_spin_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct stats zero = {}, *st;
	__u32 len = data_end - data;
	__u16 key;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	key = bpf_ntohs(eth->h_proto);
	st = bpf_map_lookup_elem(&by_ethertype, &key);
	if (!st) {
		bpf_map_update_elem(&by_ethertype, &key, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&by_ethertype, &key);
		if (!st)
			return XDP_ABORTED;
	}
	bpf_spin_lock(&st->lock);
	st->packets++;
	st->bytes += len;
	if (len > st->largest)
		st->largest = len;
	bpf_spin_unlock(&st->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
