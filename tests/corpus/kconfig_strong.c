// SPDX-License-Identifier: GPL-2.0
/* A strong __kconfig extern that no kernel configuration defines: libbpf
 * refuses to load the object ("extern ... (strong): not resolved").
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_PYBPF_SURELY_MISSING __kconfig;

SEC("xdp")
int strong_kconfig(struct xdp_md *ctx)
{
	return CONFIG_PYBPF_SURELY_MISSING ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
