// SPDX-License-Identifier: GPL-2.0
/* Flaw: passes a packet pointer as a 4-byte map key without checking that
 * 4 bytes are present. SAFE: checks first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} by_word SEC(".maps");

SEC("xdp")
int helper_pkt_key_unchecked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;

#ifdef SAFE
	void *data_end = (void *)(long)ctx->data_end;

	if (data + sizeof(__u32) > data_end)
		return XDP_PASS;
#endif
	return bpf_map_lookup_elem(&by_word, data) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
