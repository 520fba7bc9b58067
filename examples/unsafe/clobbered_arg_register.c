// SPDX-License-Identifier: GPL-2.0
/* Flaw: reads r1 after a helper call; calls clobber r1-r5, so r1 is no
 * longer initialised. SAFE: keeps the context in callee-saved r6. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int clobbered_arg_register(struct xdp_md *ctx)
{
	asm volatile(
		"r6 = r1;"
		"call %[ktime];"
#ifdef SAFE
		"r0 = *(u32 *)(r6 + 0);"
#else
		"r0 = *(u32 *)(r1 + 0);"
#endif
		"r0 = 2;"
		"exit;"
		:
		: [ktime] "i"(BPF_FUNC_ktime_get_ns)
		: "memory");
}

char LICENSE[] SEC("license") = "GPL";
