/* A ring-buffer record filled by a subprogram through a field pointer, then submitted. */
#include "common.h"

struct event {
	__u64 ts;
	__u32 ifindex;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

static __attribute__((noinline)) void fill(__u32 *field, __u32 value)
{
	*field = value;
}

SEC("xdp")
int ringbuf_record_subprog(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return XDP_PASS;
	e->ts = bpf_ktime_get_ns();
	fill(&e->ifindex, ctx->ingress_ifindex);
	fill(&e->len, ctx->data_end - ctx->data);
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
