// SPDX-License-Identifier: GPL-2.0
/* Flaw: dereferences the result of bpf_map_lookup_elem without testing it
 * for NULL. SAFE: tests it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int map_value_nullcheck(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	__u64 *val = bpf_map_lookup_elem(&counts, &key);

#ifdef SAFE
	if (!val)
		return XDP_PASS;
#endif
	*val += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
