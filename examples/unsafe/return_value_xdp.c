// SPDX-License-Identifier: GPL-2.0
/* Returns 42, which is no XDP action. The kernel does not check XDP return
 * values at load time (an unknown action is treated as XDP_ABORTED at run
 * time), so this is accepted. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int return_value_xdp(struct xdp_md *ctx)
{
	return 42;
}

char LICENSE[] SEC("license") = "GPL";
