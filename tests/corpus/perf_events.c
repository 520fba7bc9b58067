// SPDX-License-Identifier: GPL-2.0
/* An XDP program that reports every frame through a perf event array, as
 * programs did before ring buffers: libbpf's perf_buffer reads the records.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct record {
	__u32 len;
	__u16 eth_proto;
	__u8 first_byte;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("xdp")
int report(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct record rec = {};
	unsigned char *bytes = data;

	if (data + 14 > data_end)
		return XDP_ABORTED;
	rec.len = data_end - data;
	rec.eth_proto = bytes[12] << 8 | bytes[13];
	rec.first_byte = bytes[0];
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &rec, sizeof(rec));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
