// SPDX-License-Identifier: GPL-2.0
/* Flaw: loads a stack slot that was never stored to. SAFE: stores first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int uninit_stack_read(struct xdp_md *ctx)
{
	asm volatile(
#ifdef SAFE
		"r1 = 2;"
		"*(u64 *)(r10 - 8) = r1;"
#endif
		"r0 = *(u64 *)(r10 - 8);"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
