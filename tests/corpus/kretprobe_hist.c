// SPDX-License-Identifier: GPL-2.0
/* A kretprobe (BPF_KRETPROBE) histogram of return values: log2 buckets of
 * positive results in an array, errors counted by errno in a hash map.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} log2_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __s32);
	__type(value, __u32);
} errors SEC(".maps");

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	int i;

	for (i = 0; i < 15 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(kretprobe_hist, long ret)
{
	__u32 bucket, one = 1, *e;
	__s32 err;
	__u64 *slot;

	if (ret < 0) {
		err = -ret;
		e = bpf_map_lookup_elem(&errors, &err);
		if (e)
			(*e)++;
		else
			bpf_map_update_elem(&errors, &err, &one, BPF_ANY);
		return 0;
	}
	bucket = log2_u64(ret);
	slot = bpf_map_lookup_elem(&log2_hist, &bucket);
	if (slot)
		*slot += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
