// SPDX-License-Identifier: GPL-2.0
/* A raw tracepoint (vmlinux.h style) that reports its arguments through a
 * ring buffer: one record per call with the first three arguments and a
 * sequence number; bpf_ringbuf_output for calls whose first argument is 0.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u64 seq;
	__u64 a0, a1, a2;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

__u64 seq;
__u32 outputs, reserves;

SEC("raw_tp/sched_switch")
int rawtp_ringbuf(struct bpf_raw_tracepoint_args *ctx)
{
	struct event *e, local;

	seq++;
	if (ctx->args[0] == 0) {
		local.seq = seq;
		local.a0 = 0;
		local.a1 = ctx->args[1];
		local.a2 = ctx->args[2];
		outputs++;
		return bpf_ringbuf_output(&events, &local, sizeof(local), 0);
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 1;
	e->seq = seq;
	e->a0 = ctx->args[0];
	e->a1 = ctx->args[1];
	e->a2 = ctx->args[2];
	bpf_ringbuf_submit(e, 0);
	reserves++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
