// category: rodata — global data: frozen const volatile .rodata, .data, .bss
#include "common.h"

const volatile __u32 cfg_index = 3;
const volatile __u32 cfg_bad_index = 9;
const volatile __u32 cfg_rounds = 6;
const volatile __u32 cfg_big_rounds = 100000000;
__u64 counters[8];
__u32 data_value = 1;

// a const volatile index from frozen .rodata into an 8-element global array
SEC("xdp") int ok_rodata_index(struct xdp_md *ctx)
{
	return counters[cfg_index] & 3;
}
// a const volatile index whose known value (9) is past the 8-element array
SEC("xdp") int bad_rodata_index_oob(struct xdp_md *ctx)
{
	return *(volatile __u64 *)&counters[cfg_bad_index] & 3;
}
// a loop bound read from .rodata (the kernel knows it is 6)
SEC("xdp") int ok_rodata_loop_bound(struct xdp_md *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < cfg_rounds && i < 64; i++)
		sum += counters[i & 7];
	return sum & 3;
}
// an index from .rodata used unmasked into a stack buffer
SEC("xdp") int ok_rodata_stack_index(struct xdp_md *ctx)
{
	volatile __u8 buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	return buf[cfg_index] & 3;
}
// stores into frozen .rodata
SEC("xdp") int bad_rodata_store(struct xdp_md *ctx)
{
	*(volatile __u32 *)&cfg_index = 5;
	return XDP_PASS;
}
// stores into .data and .bss
SEC("xdp") int ok_data_store(struct xdp_md *ctx)
{
	data_value = ctx->ingress_ifindex;
	counters[1]++;
	return XDP_PASS;
}
// an atomic add into frozen .rodata
SEC("xdp") int bad_rodata_atomic(struct xdp_md *ctx)
{
	__sync_fetch_and_add((__u32 *)&cfg_rounds, 1);
	return XDP_PASS;
}
// a loop whose bound from .rodata (10^8) exceeds the 1M instruction budget
SEC("xdp") int bad_rodata_loop_too_long(struct xdp_md *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < cfg_big_rounds; i++)
		sum += counters[i & 7] + i;
	return sum & 3;
}
// reads past the end of .rodata
SEC("xdp") int bad_rodata_read_past_end(struct xdp_md *ctx)
{
	return *((volatile __u32 *)&cfg_index + 16) & 3;
}

char _license[] SEC("license") = "GPL";
