// SPDX-License-Identifier: GPL-2.0
/* A tracepoint on syscalls/sys_enter_write with the record as the kernel's
 * trace_event_raw_sys_enter (vmlinux.h, CO-RE): bytes requested per file
 * descriptor in a hash map, writes to stdout/stderr counted in .bss.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

const volatile __u64 big_write = 4096;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} bytes_by_fd SEC(".maps");

__u32 console_writes, big_writes;
__s64 last_id;

SEC("tracepoint/syscalls/sys_enter_write")
int tp_sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	__u32 fd = ctx->args[0];
	__u64 count = ctx->args[2], *total;

	last_id = ctx->id;
	if (fd == 1 || fd == 2)
		console_writes++;
	if (count >= big_write)
		big_writes++;
	total = bpf_map_lookup_elem(&bytes_by_fd, &fd);
	if (total)
		*total += count;
	else
		bpf_map_update_elem(&bytes_by_fd, &fd, &count, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
