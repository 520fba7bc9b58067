// SPDX-License-Identifier: MIT
/* eBPF for Windows string and memory helpers: bpf_memset, bpf_strncpy_s,
 * bpf_strncat_s, bpf_strnlen_s, bpf_memcmp_s, bpf_memcpy_s, building
 * "app-x" and storing it in a map; any helper failing denies the bind. */
#include "ebpf_nethooks.h"

PYBPF_WINDOWS_TAG

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, uint32_t);
	__type(value, char[32]);
} names SEC(".maps");
SEC("bind")
bind_action_t name_check(bind_md_t *ctx)
{
	char buf[32], prefix[8] = "app";
	uint32_t zero = 0;
	char *slot = bpf_map_lookup_elem(&names, &zero);
	if (!slot) return BIND_DENY;
	bpf_memset(buf, sizeof(buf), 0);
	if (bpf_strncpy_s(buf, sizeof(buf), prefix, sizeof(prefix))) return BIND_DENY;
	if (bpf_strncat_s(buf, sizeof(buf), "-x", 3)) return BIND_DENY;
	bpf_memcpy_s(slot, 32, buf, sizeof(buf));
	if (bpf_strnlen_s(buf, sizeof(buf)) != 5) return BIND_DENY;
	if (bpf_memcmp_s(buf, 5, "app-x", 5) != 0) return BIND_DENY;
	return BIND_PERMIT_HARD;
}
