// SPDX-License-Identifier: GPL-2.0
/* Flaw: stores 8 bytes at r10+0, above the stack (the frame pointer points
 * one past its end). SAFE: at r10-8. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int stack_above_frame(struct xdp_md *ctx)
{
	asm volatile(
		"r1 = 2;"
#ifdef SAFE
		"*(u64 *)(r10 - 8) = r1;"
#else
		"*(u64 *)(r10 + 0) = r1;"
#endif
		"r0 = 2;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
