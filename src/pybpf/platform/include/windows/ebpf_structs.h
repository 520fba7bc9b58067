/* eBPF for Windows' numbers and map definitions, written for pybpf from the
 * platform's documented interface (see bpf_helpers.h). */
#ifndef PYBPF_WINDOWS_EBPF_STRUCTS_H
#define PYBPF_WINDOWS_EBPF_STRUCTS_H

/* No libc with -target bpf: the fixed-width types, spelled out. */
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long size_t;
typedef long intptr_t;
typedef _Bool bool;
#define true 1
#define false 0

typedef enum bpf_map_type {
	BPF_MAP_TYPE_UNSPEC = 0,
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PROG_ARRAY = 3,
	BPF_MAP_TYPE_PERCPU_HASH = 4,
	BPF_MAP_TYPE_PERCPU_ARRAY = 5,
	BPF_MAP_TYPE_HASH_OF_MAPS = 6,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 7,
	BPF_MAP_TYPE_LRU_HASH = 8,
	BPF_MAP_TYPE_LPM_TRIE = 9,
	BPF_MAP_TYPE_QUEUE = 10,
	BPF_MAP_TYPE_LRU_PERCPU_HASH = 11,
	BPF_MAP_TYPE_STACK = 12,
	BPF_MAP_TYPE_RINGBUF = 13,
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 14,
} ebpf_map_type_t;

enum { BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2 };
#define MAX_TAIL_CALL_CNT 33

/* A map in a legacy "maps" section: eight 32-bit words. inner_map_idx names the
 * inner map's template by its index in the section; a non-zero inner_id names
 * it by the template's id instead. */
struct bpf_map_def {
	ebpf_map_type_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t inner_map_idx;
	uint32_t pinning;
	uint32_t id;
	uint32_t inner_id;
};

#endif
