// SPDX-License-Identifier: GPL-2.0
/* A verifier benchmark: nested loops. A 32 x 32 matrix of bytes in an
 * array map value is summed with weights (row ^ column), the inner loop
 * indexing the row the outer loop picked: 1024 inner iterations in all
 * (unrolling disabled). The verifier must bound both indices to let
 * `matrix[row * 32 + column]` through. The sum goes into the packet's
 * first word and its low bit picks the verdict. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SIDE 32

struct matrix {
	unsigned char cells[SIDE * SIDE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct matrix);
} nested_matrix SEC(".maps");

SEC("xdp")
int loop_nested(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *word = data;
	struct matrix *m;
	__u32 key = 0, sum = 0, row, column;

	if ((void *)(word + 1) > data_end)
		return XDP_ABORTED;
	m = bpf_map_lookup_elem(&nested_matrix, &key);
	if (!m)
		return XDP_ABORTED;
#pragma clang loop unroll(disable)
	for (row = 0; row < SIDE; row++) {
#pragma clang loop unroll(disable)
		for (column = 0; column < SIDE; column++)
			sum += m->cells[row * SIDE + column] * (row ^ column);
	}
	word[0] = sum;
	return (sum & 1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
