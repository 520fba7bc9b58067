// SPDX-License-Identifier: GPL-2.0
/* Per-CPU hash of frame and byte counts by EtherType, created on first
 * sight with BPF_NOEXIST; a per-CPU array holds the size histogram.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct counters {
	__u64 frames;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);
	__type(value, struct counters);
} by_type SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} size_hist SEC(".maps");

SEC("xdp")
int xdp_percpu_ethertype(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct counters init = {}, *c;
	__u32 len = data_end - data, bucket, *h;
	__u16 type;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	type = bpf_ntohs(eth->h_proto);
	c = bpf_map_lookup_elem(&by_type, &type);
	if (!c) {
		init.frames = 1;
		init.bytes = len;
		bpf_map_update_elem(&by_type, &type, &init, BPF_NOEXIST);
	} else {
		c->frames++;
		c->bytes += len;
	}
	bucket = len >> 6;
	if (bucket > 7)
		bucket = 7;
	h = bpf_map_lookup_elem(&size_hist, &bucket);
	if (h)
		(*h)++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
