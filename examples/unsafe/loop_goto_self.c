// SPDX-License-Identifier: GPL-2.0
/* Flaw: a jump to itself, the smallest loop that never exits (no exit
 * instruction follows: it would be unreachable, which the kernel rejects
 * first). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int loop_goto_self(struct xdp_md *ctx)
{
	asm volatile(
		"r0 = 2;"
	"1:"
		"goto 1b;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
