// SPDX-License-Identifier: MIT
/* A program of eBPF for Windows' sample extension type: finds "cat" in a
 * text it copies from the context's data range, replaces it with "dog",
 * records where it was found and the implicit helpers' answers in a map,
 * and returns the offset found (or the helper's -1). */
#include "sample_ext.h"

PYBPF_WINDOWS_TAG

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, uint32_t);
	__type(value, char[32]);
} texts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, uint32_t);
	__type(value, int64_t);
} answers SEC(".maps");

static void note(uint32_t slot, int64_t value)
{
	int64_t *cell = bpf_map_lookup_elem(&answers, &slot);
	if (cell)
		*cell = value;
}

SEC("sample_ext")
int find_and_replace(sample_program_context_t *ctx)
{
	char needle[4] = "cat", with[4] = "dog";
	uint32_t zero = 0;
	char *text = bpf_map_lookup_elem(&texts, &zero);
	if (!text)
		return -2;
	uint8_t *start = ctx->data_start;
	if (start + 32 > ctx->data_end)
		return -3;
	bpf_memcpy_s(text, 32, start, 32);
	text[31] = 0;
	int64_t at = sample_ebpf_extension_find(text, 32, needle, sizeof(needle));
	note(0, at);
	note(1, sample_ebpf_extension_helper_implicit_1());
	note(2, sample_ebpf_extension_helper_implicit_2(ctx->uint32_data));
	note(3, sample_ebpf_extension_helper_function1(ctx));
	if (at >= 0 && sample_ebpf_extension_replace(text, 32, at, with, sizeof(with)))
		return -4;
	return at;
}
