// SPDX-License-Identifier: GPL-2.0
/* Flaw: bpf_ringbuf_output given a hash map. SAFE: given a ring buffer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
#ifdef SAFE
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
#else
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
#endif
} events SEC(".maps");

SEC("xdp")
int helper_wrong_map_type(struct xdp_md *ctx)
{
	__u64 stamp = bpf_ktime_get_ns();

	bpf_ringbuf_output(&events, &stamp, sizeof(stamp), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
