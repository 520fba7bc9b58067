/* An array of maps whose inner map comes from the BTF `values` declaration. */
#include "common.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { &inner0 },
};

SEC("xdp")
int map_in_map_values(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count;
	void *m = bpf_map_lookup_elem(&outer, &key);

	if (!m)
		return XDP_PASS;
	count = bpf_map_lookup_elem(m, &key);
	if (!count)
		return XDP_PASS;
	__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
