// SPDX-License-Identifier: MIT
/* An eBPF for Windows sock_ops program: records every connection event
 * (established actively or passively, deleted) with its addresses, ports,
 * protocol and flow id in a ring buffer. */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

struct event {
	uint32_t op;
	uint32_t local_ip4;
	uint32_t remote_ip4;
	uint16_t local_port;
	uint16_t remote_port;
	uint64_t flow_id;
	uint8_t protocol;
	uint8_t pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* A function of its own (in .text): its call of the sock_ops helper is numbered
 * for the program type of the program that calls it. */
static __attribute__((noinline)) uint64_t flow_of(bpf_sock_ops_t *ctx)
{
	return bpf_sock_ops_get_flow_id(ctx);
}

SEC("sockops")
int connection_events(bpf_sock_ops_t *ctx)
{
	struct event ev = {};

	if (ctx->family != 2) /* AF_INET */
		return 0;
	ev.op = ctx->op;
	ev.local_ip4 = ctx->local_ip4;
	ev.remote_ip4 = ctx->remote_ip4;
	ev.local_port = ctx->local_port;
	ev.remote_port = ctx->remote_port;
	ev.protocol = ctx->protocol;
	ev.flow_id = flow_of(ctx);
	return bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
}
