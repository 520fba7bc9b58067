// category: maps — map values: NULL checks, bounds, helper arguments, map-in-map
#include "common.h"

struct val { __u64 count; __u32 arr[8]; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct val);
} hmap SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} amap SEC(".maps");
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); };
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { &inner_a, &inner_b } };

// looks up a value and checks it for NULL before the increment
SEC("xdp") int ok_map_lookup_checked(struct xdp_md *ctx)
{
	__u32 key = 1;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	if (!v)
		return XDP_PASS;
	__sync_fetch_and_add(&v->count, 1);
	return XDP_PASS;
}
// dereferences the lookup result without a NULL check
SEC("xdp") int bad_map_null_deref(struct xdp_md *ctx)
{
	__u32 key = 1;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	v->count++;
	return XDP_PASS;
}
// an index masked to 0..7 into the value's array
SEC("xdp") int ok_map_value_var_index(struct xdp_md *ctx)
{
	__u32 key = 0, i = pkt_byte(ctx, 0) & 7;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	if (!v)
		return XDP_PASS;
	return v->arr[i] & 3;
}
// an index masked to 0..15 into an 8-element array in the value
SEC("xdp") int bad_map_value_var_oob(struct xdp_md *ctx)
{
	__u32 key = 0, i = pkt_byte(ctx, 0) & 15;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	if (!v)
		return XDP_PASS;
	return v->arr[i] & 3;
}
// reads 8 bytes at offset 40 of a 40-byte value
SEC("xdp") int bad_map_value_const_oob(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	if (!v)
		return XDP_PASS;
	return *(volatile __u64 *)((char *)v + 40) & 3;
}
// reads before the value's start
SEC("xdp") int bad_map_value_negative(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct val *v = bpf_map_lookup_elem(&hmap, &key);
	if (!v)
		return XDP_PASS;
	return *(volatile __u32 *)((char *)v - 4) & 3;
}
// updates an array element from a stack key and value
SEC("xdp") int ok_map_update(struct xdp_md *ctx)
{
	__u32 key = 2;
	__u64 value = 7;
	bpf_map_update_elem(&amap, &key, &value, BPF_ANY);
	return XDP_PASS;
}
// passes a key of uninitialised stack: root may (allow_uninit_stack)
SEC("xdp") __naked int ok_map_key_uninit_root(void)
{
	asm volatile("r1 = %[amap] ll; r2 = r10; r2 += -8; call %[lookup]; r0 = 0; exit;"
		     :: [amap] "i"(&amap), [lookup] "i"(BPF_FUNC_map_lookup_elem) : "memory");
}
// passes a NULL key to bpf_map_lookup_elem
SEC("xdp") __naked int bad_map_key_null(void)
{
	asm volatile("r1 = %[amap] ll; r2 = 0; call %[lookup]; r0 = 0; exit;"
		     :: [amap] "i"(&amap), [lookup] "i"(BPF_FUNC_map_lookup_elem) : "memory");
}
// passes a scalar where the map pointer goes
SEC("xdp") __naked int bad_map_arg_scalar(void)
{
	asm volatile("r1 = 0; *(u64 *)(r10 - 8) = r1; r2 = r10; r2 += -8; call %[lookup]; r0 = 0; exit;"
		     :: [lookup] "i"(BPF_FUNC_map_lookup_elem) : "memory");
}
// a 2-byte key on the stack where the map's key is 4 bytes, at the frame's top
SEC("xdp") __naked int bad_map_key_too_short(void)
{
	asm volatile("r1 = 0; *(u16 *)(r10 - 2) = r1; r1 = %[amap] ll; r2 = r10; r2 += -2; call %[lookup]; r0 = 0; exit;"
		     :: [amap] "i"(&amap), [lookup] "i"(BPF_FUNC_map_lookup_elem) : "memory");
}
// stores the ctx pointer into a map value: root may leak pointers
SEC("xdp") int ok_map_store_ptr_root(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&amap, &key);
	if (!v)
		return XDP_PASS;
	*v = (__u64)(long)ctx;
	return XDP_PASS;
}
// map-in-map: the inner map from the BTF `values` declaration, result checked
SEC("xdp") int ok_map_in_map(struct xdp_md *ctx)
{
	__u32 key = 1, ikey = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	if (!inner)
		return XDP_PASS;
	__u64 *v = bpf_map_lookup_elem(inner, &ikey);
	if (!v)
		return XDP_PASS;
	return *v & 3;
}
// map-in-map: the inner map pointer used without a NULL check
SEC("xdp") int bad_map_in_map_nocheck(struct xdp_md *ctx)
{
	__u32 key = 1, ikey = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	__u64 *v = bpf_map_lookup_elem(inner, &ikey);
	if (!v)
		return XDP_PASS;
	return *v & 3;
}
// map-in-map: reads past the inner map's 8-byte value
SEC("xdp") int bad_map_in_map_oob(struct xdp_md *ctx)
{
	__u32 key = 0, ikey = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	if (!inner)
		return XDP_PASS;
	__u64 *v = bpf_map_lookup_elem(inner, &ikey);
	if (!v)
		return XDP_PASS;
	return v[1] & 3;
}
// a value pointer compared with NULL via a copy (the check covers both registers)
SEC("xdp") int ok_map_null_check_copy(struct xdp_md *ctx)
{
	__u32 key = 3;
	__u64 *v = bpf_map_lookup_elem(&amap, &key);
	__u64 *w = v;
	if (!v)
		return XDP_PASS;
	return *w & 3;
}
// a constant added to a lookup result before its NULL check: this kernel accepts it
SEC("xdp") __naked int ok_map_or_null_const_arith(void)
{
	asm volatile("r1 = 0; *(u32 *)(r10 - 4) = r1; r1 = %[amap] ll; r2 = r10; r2 += -4; call %[lookup];"
		     "r0 += 4; if r0 == 0 goto +1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit;"
		     :: [amap] "i"(&amap), [lookup] "i"(BPF_FUNC_map_lookup_elem) : "memory");
}
// deletes an element with a key on the stack
SEC("xdp") int ok_map_delete(struct xdp_md *ctx)
{
	__u32 key = 5;
	bpf_map_delete_elem(&hmap, &key);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
