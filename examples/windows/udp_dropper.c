// SPDX-License-Identifier: MIT
/* An eBPF for Windows XDP program: drops IPv4 UDP frames to the port in
 * slot 0 of `drop_port` and counts them (frames and bytes) in
 * `dropped`; passes the rest. Its xdp_md holds real pointers, and its
 * actions are Windows' (XDP_PASS 1, XDP_DROP 2). */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

struct counts {
	uint64_t frames;
	uint64_t bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, uint32_t);
	__type(value, uint16_t);
} drop_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, uint32_t);
	__type(value, struct counts);
} dropped SEC(".maps");

SEC("xdp")
int drop_udp(xdp_md_t *ctx)
{
	uint8_t *data = ctx->data, *end = ctx->data_end;
	uint32_t zero = 0;
	uint16_t *port = bpf_map_lookup_elem(&drop_port, &zero);
	struct counts *n;

	if (data + 14 + 20 + 8 > end || !port)
		return XDP_PASS;
	if (data[12] != 0x08 || data[13] != 0x00 || data[14] != 0x45 || data[23] != 17)
		return XDP_PASS;
	if (((data[36] << 8) | data[37]) != *port)
		return XDP_PASS;
	n = bpf_map_lookup_elem(&dropped, &zero);
	if (n) {
		n->frames += 1;
		n->bytes += end - data;
	}
	return XDP_DROP;
}
