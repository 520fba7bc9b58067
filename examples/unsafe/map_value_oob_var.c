// SPDX-License-Identifier: GPL-2.0
/* Flaw: indexes an 8-byte map value with a packet byte masked to 0..15.
 * SAFE: masks it to 0..7. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[8]);
} bytes SEC(".maps");

#ifdef SAFE
#define MASK 7
#else
#define MASK 15
#endif

SEC("xdp")
int map_value_oob_var(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	unsigned char *val;

	if ((void *)(data + 1) > data_end)
		return XDP_PASS;
	val = bpf_map_lookup_elem(&bytes, &key);
	if (!val)
		return XDP_PASS;
	val[data[0] & MASK] += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
