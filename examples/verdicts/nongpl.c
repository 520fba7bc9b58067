// category: license — helpers reserved to GPL-compatible programs
#include "common.h"

// bpf_trace_printk from a program whose license is not GPL-compatible
SEC("xdp") int bad_gpl_helper_printk(struct xdp_md *ctx)
{
	bpf_printk("x");
	return XDP_PASS;
}
// bpf_get_prandom_u32 (not GPL-only) from the same non-GPL object
SEC("xdp") int ok_non_gpl_prandom(struct xdp_md *ctx)
{
	return bpf_get_prandom_u32() & 3;
}
// bpf_probe_read_kernel (GPL-only) from a non-GPL kprobe
SEC("kprobe/do_nanosleep") int bad_gpl_probe_read(void *ctx)
{
	__u64 v;
	bpf_probe_read_kernel(&v, sizeof(v), ctx);
	return v & 1;
}

char _license[] SEC("license") = "Dual MIT/BSD-ish proprietary";
