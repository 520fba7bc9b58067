// category: license — an object without a license section (libbpf passes "")
#include "common.h"

// bpf_trace_printk (GPL-only) from an object that has no license section
SEC("xdp") int bad_gpl_helper_no_license(struct xdp_md *ctx)
{
	bpf_printk("x");
	return XDP_PASS;
}
// a program calling no GPL-only helper loads without a license
SEC("xdp") int ok_no_license(struct xdp_md *ctx)
{
	return bpf_get_prandom_u32() & 3;
}
