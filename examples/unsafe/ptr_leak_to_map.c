// SPDX-License-Identifier: GPL-2.0
/* Stores the packet pointer itself into a map value, where user space
 * can read it (a kernel address leak). Rejected for unprivileged loaders
 * only; root has allow_ptr_leaks. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} leak SEC(".maps");

SEC("xdp")
int ptr_leak_to_map(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *val = bpf_map_lookup_elem(&leak, &key);

	if (val)
		*val = (__u64)ctx->data;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
