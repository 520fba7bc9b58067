// SPDX-License-Identifier: GPL-2.0
/* Global variables of every kind libbpf lays out: .rodata (const volatile
 * configuration), .data, .bss, a custom .data.<name> and .rodata.<name>
 * section, static and global variables, arrays and structs, sizes from 1 to
 * 16 bytes with every alignment. The XDP program reads the configuration and
 * writes results into .bss and .data, so that a test can compare every
 * variable's bytes with the kernel's after a run.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct limits {
	__u8 kind;
	__u64 max_bytes;
};

struct counters {
	__u32 runs;
	__u16 last_len;
	__u8 flags;
	__u64 total;
};

/* .rodata: set by the user between open and load */
const volatile __u8 cfg_shift = 1;
const volatile __u32 cfg_mult = 3;
const volatile __u16 cfg_port = 53;
const volatile struct limits cfg_limits = { .kind = 2, .max_bytes = 1500 };
const volatile __u64 cfg_salt = 0x1122334455667788ULL;
static const volatile __u32 cfg_hidden = 9;

/* .data */
__u8 d_seen = 1;
__u64 d_acc = 1000;
__u16 d_hist[3] = { 10, 20, 30 };
static __u32 d_static = 42;
struct counters d_counters = { .runs = 5, .last_len = 0, .flags = 0x80, .total = 7 };

/* .bss */
__u32 b_len;
__u8 b_proto;
__u64 b_mixed;
__u16 b_ports[4];
struct counters b_counters;

/* custom sections: libbpf makes one map per section */
__u32 dc_a SEC(".data.custom") = 0xaaaa;
__u8 dc_b SEC(".data.custom") = 0xbb;
__u64 dc_c SEC(".data.custom") = 0xcccccccc;
const volatile __u16 rc_a SEC(".rodata.custom") = 0x1234;
const volatile __u64 rc_b SEC(".rodata.custom") = 0x5678;
const volatile __u8 rc_c SEC(".rodata.custom") = 0x9a;

SEC("xdp")
int globals_mixed(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	b_len = (len << cfg_shift) * cfg_mult;
	b_proto = cfg_limits.kind + rc_c;
	b_mixed = cfg_salt ^ cfg_limits.max_bytes ^ rc_b ^ cfg_hidden;
	b_ports[0] = cfg_port;
	b_ports[3] = rc_a;
	b_counters.runs += 1;
	b_counters.total += len;
	b_counters.last_len = len;

	d_seen += 1;
	d_acc += len + d_static;
	d_hist[len & 1] += 1;
	d_static += 1;
	d_counters.runs += 1;
	d_counters.total += dc_c;
	d_counters.flags |= dc_b;
	dc_a += 1;
	return len > cfg_limits.max_bytes ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
