// SPDX-License-Identifier: GPL-2.0
/* Types a generated skeleton (tests/test_skeleton.py) must reproduce: a hash
 * map keyed by a nested struct with an array, values with an enum member,
 * bitfields, an anonymous union and a char array; a per-CPU array; an array
 * of enums; and globals of those types in .rodata, .data and .bss. The XDP
 * program reads a struct flow_key from the start of the packet, counts it in
 * `flows` and records what it did in .bss, so that every value a test reads
 * back follows from the packet and the configuration.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };

struct addr {
	__u32 ip;
	__u16 port;
	__u8 proto;
};

struct flow_key {
	struct addr src;
	struct addr dst;
	__u8 tag[2];
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	enum color color;
	__u32 urgent : 1, level : 3, code : 12;
	__s32 small : 5;
	union {
		__u32 raw;
		__u8 parts[4];
	};
	char name[8];
	__s16 delta;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, enum color);
} palette SEC(".maps");

/* .rodata */
const volatile enum color cfg_color = GREEN;
const volatile struct addr cfg_match = { .ip = 0x0a000001, .port = 80, .proto = 6 };
const volatile __s32 cfg_bias = -5;

/* .data; names Python reserves: a keyword member and a double underscore */
struct keywords {
	__u16 from;
	__u16 in;
};

char d_label[8] = "skel";
struct addr d_last_src = { .ip = 1, .port = 2, .proto = 3 };
struct keywords d_keywords = { .from = 1, .in = 2 };
__u32 __d_mangled = 77;

/* .bss */
__u64 b_total;
enum color b_last_color;
struct flow_stats b_last;
__u32 b_matched;

SEC("xdp")
int skel_types(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct flow_key key;
	struct flow_stats *stats, fresh = {};
	__u32 len = data_end - data, zero = 0, slot;
	__u64 *hit;

	if (data + sizeof(key) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(&key, data, sizeof(key));
	stats = bpf_map_lookup_elem(&flows, &key);
	if (stats) {
		stats->packets += 1;
		stats->bytes += len;
		stats->level = (stats->level + 1) & 7;
		stats->small += cfg_bias;
		stats->delta += cfg_bias;
	} else {
		fresh.packets = 1;
		fresh.bytes = len;
		fresh.color = cfg_color;
		fresh.urgent = 1;
		fresh.level = 2;
		fresh.code = len;
		fresh.small = cfg_bias;
		fresh.raw = 0x04030201;
		__builtin_memcpy(fresh.name, "new", 4);
		fresh.delta = cfg_bias;
		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
		stats = &fresh;
	}
	slot = key.tag[0] & 3;
	bpf_map_update_elem(&palette, &slot, (enum color *)&cfg_color, BPF_ANY);
	hit = bpf_map_lookup_elem(&hits, &zero);
	if (hit)
		*hit += 1;
	b_total += len;
	b_last_color = cfg_color;
	b_last = *stats;
	d_last_src = key.src;
	d_label[0] = 'S';
	d_keywords.in += d_keywords.from;
	__d_mangled += 1;
	if (key.src.ip == cfg_match.ip && key.src.port == cfg_match.port &&
	    key.src.proto == cfg_match.proto) {
		b_matched += 1;
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
