/* bpf_get_stack into a stack buffer, its length checked before use. */
#include "common.h"

SEC("tracepoint/syscalls/sys_enter_getpid")
int get_stack(void *ctx)
{
	__u64 frames[8];
	long n;

	n = bpf_get_stack(ctx, frames, sizeof(frames), BPF_F_USER_STACK);
	if (n < 8)
		return 0;
	return frames[0] == 0;
}

char LICENSE[] SEC("license") = "GPL";
