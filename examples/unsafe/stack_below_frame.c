// SPDX-License-Identifier: GPL-2.0
/* Flaw: stores 8 bytes at r10-520, below the 512-byte stack.
 * SAFE: at r10-512, the lowest valid slot. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int stack_below_frame(struct xdp_md *ctx)
{
	asm volatile(
		"r1 = 2;"
#ifdef SAFE
		"*(u64 *)(r10 - 512) = r1;"
#else
		"*(u64 *)(r10 - 520) = r1;"
#endif
		"r0 = 2;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
