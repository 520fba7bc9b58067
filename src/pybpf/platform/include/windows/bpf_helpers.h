/* eBPF for Windows programs, built with clang -target bpf against pybpf.
 *
 * Written for pybpf from eBPF for Windows' documented interface (helper
 * ids, map types, map definitions, section names): a program that includes
 * this header calls the same helper numbers and lays out the same maps as
 * one built against eBPF for Windows' own headers, so pybpf loads either
 * with platform="windows". `pybpf include-dir --platform windows` prints
 * this directory. */
#ifndef PYBPF_WINDOWS_BPF_HELPERS_H
#define PYBPF_WINDOWS_BPF_HELPERS_H

#include "ebpf_structs.h"

#define SEC(name) __attribute__((section(name), used))
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* BTF-defined maps (.maps), as libbpf spells them. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]

/* Every eBPF for Windows object carries this tag. */
#define PYBPF_WINDOWS_TAG \
	bool _ebpf_for_windows __attribute__((section(".ebpf_for_windows"), used)) = true;

/* General helpers: the call's immediate is the helper's Windows id. */
#define BPF_HELPER(ret, name, args, id) static ret(*name) args = (void *)id

BPF_HELPER(void *, bpf_map_lookup_elem, (void *map, const void *key), 1);
BPF_HELPER(int64_t, bpf_map_update_elem, (void *map, const void *key, const void *value, uint64_t flags), 2);
BPF_HELPER(int64_t, bpf_map_delete_elem, (void *map, const void *key), 3);
BPF_HELPER(void *, bpf_map_lookup_and_delete_elem, (void *map, const void *key), 4);
BPF_HELPER(int64_t, bpf_tail_call, (const void *ctx, const void *prog_array, uint32_t index), 5);
BPF_HELPER(uint32_t, bpf_get_prandom_u32, (void), 6);
BPF_HELPER(uint64_t, bpf_ktime_get_boot_ns, (void), 7);
BPF_HELPER(uint64_t, bpf_get_smp_processor_id, (void), 8);
BPF_HELPER(uint64_t, bpf_ktime_get_ns, (void), 9);
BPF_HELPER(int, bpf_csum_diff, (const void *from, int from_size, const void *to, int to_size, int seed), 10);
BPF_HELPER(int, bpf_ringbuf_output, (void *ring, const void *data, uint64_t size, uint64_t flags), 11);
BPF_HELPER(long, bpf_trace_printk2, (const char *fmt, uint32_t fmt_size), 12);
BPF_HELPER(long, bpf_trace_printk3, (const char *fmt, uint32_t fmt_size, uint64_t a3), 13);
BPF_HELPER(long, bpf_trace_printk4, (const char *fmt, uint32_t fmt_size, uint64_t a3, uint64_t a4), 14);
BPF_HELPER(long, bpf_trace_printk5, (const char *fmt, uint32_t fmt_size, uint64_t a3, uint64_t a4, uint64_t a5), 15);
BPF_HELPER(int64_t, bpf_map_push_elem, (void *map, const void *value, uint64_t flags), 16);
BPF_HELPER(int64_t, bpf_map_pop_elem, (void *map, void *value), 17);
BPF_HELPER(int64_t, bpf_map_peek_elem, (void *map, void *value), 18);
BPF_HELPER(uint64_t, bpf_get_current_pid_tgid, (void), 19);
BPF_HELPER(uint64_t, bpf_get_current_logon_id, (const void *ctx), 20);
BPF_HELPER(int32_t, bpf_is_current_admin, (const void *ctx), 21);
BPF_HELPER(long, bpf_memcpy_s, (void *dst, size_t dst_size, const void *src, size_t src_size), 22);
BPF_HELPER(int, bpf_memcmp_s, (const void *a, size_t a_size, const void *b, size_t b_size), 23);
BPF_HELPER(long, bpf_memset, (void *mem, size_t size, int value), 24);
BPF_HELPER(long, bpf_memmove_s, (void *dst, size_t dst_size, const void *src, size_t src_size), 25);
BPF_HELPER(int64_t, bpf_get_socket_cookie, (const void *ctx), 26);
BPF_HELPER(int, bpf_strncpy_s, (char *dst, size_t dst_size, const char *src, size_t count), 27);
BPF_HELPER(int, bpf_strncat_s, (char *dst, size_t dst_size, const char *src, size_t count), 28);
BPF_HELPER(size_t, bpf_strnlen_s, (const char *str, size_t str_size), 29);
BPF_HELPER(uint64_t, bpf_ktime_get_boot_ms, (void), 30);
BPF_HELPER(uint64_t, bpf_ktime_get_ms, (void), 31);
BPF_HELPER(int, bpf_perf_event_output, (const void *ctx, void *map, uint64_t flags, const void *data, uint64_t size), 32);
BPF_HELPER(uint64_t, bpf_get_current_process_start_key, (void), 33);
BPF_HELPER(int64_t, bpf_get_current_thread_create_time, (void), 34);
BPF_HELPER(intptr_t, bpf_redirect_map, (void *map, uint64_t key, uint64_t flags), 35);

/* bpf_printk(fmt, ...): the trace_printk variant for the argument count. */
#define _BPF_PRINTK_PICK(_1, _2, _3, _4, name, ...) name
#define bpf_printk(fmt, ...)                                                          \
	({                                                                            \
		static const char _fmt[] = fmt;                                       \
		_BPF_PRINTK_PICK(_0, ##__VA_ARGS__, bpf_trace_printk5, bpf_trace_printk4, \
				 bpf_trace_printk3, bpf_trace_printk2)(_fmt, sizeof(_fmt), ##__VA_ARGS__); \
	})

#endif
