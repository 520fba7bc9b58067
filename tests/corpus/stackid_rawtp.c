// SPDX-License-Identifier: GPL-2.0
/* bpf_get_stackid into a stack trace map from a raw tracepoint, as profilers
 * do: ids of the kernel stack with and without skipping frames, with the
 * fast compare and reuse flags, and an invalid flag. The ids land in .bss.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1000); /* 1024 buckets */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 16 * sizeof(__u64));
} stacks SEC(".maps");

long ids[5];

SEC("raw_tracepoint/sys_enter")
int stackids(void *ctx)
{
	ids[0] = bpf_get_stackid(ctx, &stacks, 0);
	ids[1] = bpf_get_stackid(ctx, &stacks, 1);
	ids[2] = bpf_get_stackid(ctx, &stacks, BPF_F_FAST_STACK_CMP);
	ids[3] = bpf_get_stackid(ctx, &stacks, BPF_F_REUSE_STACKID | 2);
	ids[4] = bpf_get_stackid(ctx, &stacks, 1 << 12);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
