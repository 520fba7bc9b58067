// SPDX-License-Identifier: GPL-2.0
/* Flaw: the last instruction is not an exit or jump, so execution falls
 * off the end of the program. SAFE: ends with exit. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int no_exit_fallthrough(struct xdp_md *ctx)
{
	asm volatile(
		"r0 = 2;"
#ifdef SAFE
		"exit;"
#endif
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
