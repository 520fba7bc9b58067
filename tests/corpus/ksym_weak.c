// SPDX-License-Identifier: GPL-2.0
/* Only weak typeless __ksym externs: the object loads everywhere; in pybpf,
 * which has no kernel symbols, ksym_exists() tells the program they are
 * absent. (A strong one, as in ksym_externs.c, fails the whole load, in
 * libbpf too when the kernel lacks it.)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* libbpf's bpf_ksym_exists(), which the installed headers may predate */
#define ksym_exists(sym) (!!&(sym))

extern const void _stext __ksym __weak;
extern const void pybpf_no_such_symbol __ksym __weak;

SEC("xdp")
int weak_ksyms(struct xdp_md *ctx)
{
	if (ksym_exists(pybpf_no_such_symbol))
		return XDP_ABORTED;
	return ksym_exists(_stext) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
