// SPDX-License-Identifier: MIT
/* An eBPF for Windows XDP program: drops IPv4 UDP frames to the port in
 * slot 0 of `drop_port` and counts them (frames and bytes) in
 * `dropped`; passes the rest. Its xdp_md holds real pointers, and its
 * actions are Windows' (XDP_PASS 1, XDP_DROP 2). strip_vlan below pops a VLAN
 * tag with bpf_xdp_adjust_head. */
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

/* Pops an 802.1Q tag: the MAC addresses move 4 bytes on, over the tag, and
 * bpf_xdp_adjust_head (Windows' helper 0x10000 of XDP) drops the 4 bytes in
 * front; other frames pass untouched. */
SEC("xdp/strip_vlan")
int strip_vlan(xdp_md_t *ctx)
{
	uint8_t *data = ctx->data, *end = ctx->data_end;
	uint8_t macs[12];

	if (data + 18 > end || data[12] != 0x81 || data[13] != 0x00)
		return XDP_PASS;
	__builtin_memcpy(macs, data, 12);
	__builtin_memcpy(data + 4, macs, 12);
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_DROP;
	return XDP_PASS;
}
