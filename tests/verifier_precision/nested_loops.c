/* Nested bounded loops over a map value. */
#include "common.h"

struct grid {
	__u32 cell[8][8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct grid);
} grids SEC(".maps");

SEC("xdp")
int nested_loops(struct xdp_md *ctx)
{
	__u32 key = 0, sum = 0;
	struct grid *g = bpf_map_lookup_elem(&grids, &key);

	if (!g)
		return XDP_PASS;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 8; i++) {
#pragma clang loop unroll(disable)
		for (int j = 0; j < 8; j++)
			sum += g->cell[i][j];
	}
	return sum > 100 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
