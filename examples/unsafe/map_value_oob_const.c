// SPDX-License-Identifier: GPL-2.0
/* Flaw: the map value is 8 bytes; the program writes the 4 bytes at
 * offset 8. SAFE: writes the 4 bytes at offset 4. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slot SEC(".maps");

#ifdef SAFE
#define WORD 1
#else
#define WORD 2
#endif

SEC("xdp")
int map_value_oob_const(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *val = bpf_map_lookup_elem(&slot, &key);
	volatile __u32 *words = (volatile __u32 *)val;

	if (!val)
		return XDP_PASS;
	words[WORD] = 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
