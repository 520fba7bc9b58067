// SPDX-License-Identifier: GPL-2.0
/* Typeless __ksym externs: a weak one (bpf_ksym_exists() tells whether the
 * kernel has it; no kernel is there in pybpf, so it reads as absent) and a
 * strong one, which pybpf cannot provide: loading `strong_ksym` must fail at
 * load, naming the symbol, while `weak_ksym` alone loads and runs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* libbpf's bpf_ksym_exists(), which the installed headers may predate */
#define ksym_exists(sym) (!!&(sym))

extern const void bpf_prog_active __ksym __weak;
extern const void bpf_stats_enabled_key __ksym;

SEC("xdp")
int weak_ksym(struct xdp_md *ctx)
{
	return ksym_exists(bpf_prog_active) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int strong_ksym(struct xdp_md *ctx)
{
	__u64 where = (__u64)&bpf_stats_enabled_key;

	return where & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
