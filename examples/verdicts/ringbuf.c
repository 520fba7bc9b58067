// category: ringbuf — ring-buffer records: NULL checks, bounds, references
#include "common.h"

struct event { __u32 pid; __u32 len; char comm[16]; __u8 payload[32]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } arr SEC(".maps");

// reserves, fills and submits a record
SEC("xdp") int ok_rb_submit(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->pid = 1;
	e->len = 0;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// pointer arithmetic inside the record: &e->comm passed to a helper, payload at a bounded index
SEC("kprobe/do_nanosleep") int ok_rb_field_ptr(void *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	__u32 i = bpf_get_prandom_u32() & 31;
	e->payload[i] = 1;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
// writes the record without checking the reservation for NULL
SEC("xdp") int bad_rb_nocheck(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	e->pid = 1;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// reserves a record and never submits or discards it
SEC("xdp") int bad_rb_leak(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->pid = 1;
	return XDP_PASS;
}
// discards the record on one path, submits on the other
SEC("xdp") int ok_rb_discard(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	if (ctx->ingress_ifindex == 1) {
		bpf_ringbuf_discard(e, 0);
		return XDP_DROP;
	}
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// writes one byte past the end of the record
SEC("xdp") int bad_rb_oob(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	*((volatile __u8 *)e + sizeof(*e)) = 1;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// a payload index masked to 0..63 into a 32-byte array at the record's end
SEC("xdp") int bad_rb_var_oob(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->payload[pkt_byte(ctx, 0) & 63] = 1;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// writes the record after submitting it
SEC("xdp") int bad_rb_use_after_submit(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	bpf_ringbuf_submit(e, 0);
	e->pid = 2;
	return XDP_PASS;
}
// submits the same record twice
SEC("xdp") int bad_rb_double_submit(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	bpf_ringbuf_submit(e, 0);
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// a reservation size not known at load time
SEC("xdp") int bad_rb_var_size(struct xdp_md *ctx)
{
	void *e = bpf_ringbuf_reserve(&rb, (pkt_byte(ctx, 0) & 63) + 8, 0);
	if (!e)
		return XDP_PASS;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}
// copies a stack struct into the ring with bpf_ringbuf_output
SEC("xdp") int ok_rb_output(struct xdp_md *ctx)
{
	struct event e = {};
	e.pid = ctx->ingress_ifindex;
	bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
	return XDP_PASS;
}
// bpf_ringbuf_output given an array map
SEC("xdp") int bad_rb_wrong_map(struct xdp_md *ctx)
{
	__u64 v = 1;
	bpf_ringbuf_output(&arr, &v, sizeof(v), 0);
	return XDP_PASS;
}
// submits a map value instead of a reserved record
SEC("xdp") int bad_rb_submit_map_value(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&arr, &key);
	if (!v)
		return XDP_PASS;
	bpf_ringbuf_submit(v, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
