/* Pointer arithmetic inside a ring-buffer record: a field and a bounded index. */
#include "common.h"

struct event {
	__u32 len;
	__u32 proto;
	__u8 bytes[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ringbuf_record_arith(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	struct event *e;
	__u32 *field;

	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	field = &e->proto;
	*field = 17;
	e->len = data_end - data;
	e->bytes[p[0] & 15] = p[0];
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
