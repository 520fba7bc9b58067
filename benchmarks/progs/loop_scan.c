// SPDX-License-Identifier: GPL-2.0
/* A verifier benchmark: a 1024-byte scan. The program looks up a 1024-byte
 * array map value and folds its bytes into a checksum seeded from the
 * packet's first byte, one byte per iteration (unrolling disabled, so the
 * loop runs 1024 times in the verifier as in the program; no branch in the
 * body, since a branch per byte doubles the kernel's states each round and
 * it gives up at a million instructions). The checksum is stored back into
 * the value's first word and picks the verdict. The verifier must bound the
 * index by the loop's exit test to let every access through. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SCAN_BYTES 1024

struct buffer {
	unsigned char bytes[SCAN_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct buffer);
} scan_buffer SEC(".maps");

SEC("xdp")
int loop_scan(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *data_end = (void *)(long)ctx->data_end;
	struct buffer *buf;
	__u32 key = 0, sum, i;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	buf = bpf_map_lookup_elem(&scan_buffer, &key);
	if (!buf)
		return XDP_ABORTED;
	sum = data[0];
#pragma clang loop unroll(disable)
	for (i = 0; i < SCAN_BYTES; i++)
		sum = (sum << 5) + sum + buf->bytes[i];
	*(__u32 *)buf->bytes = sum;
	return (sum & 1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
