/* The program type of eBPF for Windows' sample extension, SEC("sample_ext"),
 * written for pybpf from the extension's documented interface: its context
 * (a data range and two numbers a host fills) and its own helpers. */
#ifndef PYBPF_WINDOWS_SAMPLE_EXT_H
#define PYBPF_WINDOWS_SAMPLE_EXT_H

#include "bpf_helpers.h"

typedef struct sample_program_context {
	uint8_t *data_start; /* the data range the program may read */
	uint8_t *data_end;
	uint32_t uint32_data;
	uint16_t uint16_data;
	uint32_t helper_data_1; /* read by the "implicit" helpers below */
	uint32_t helper_data_2;
} sample_program_context_t;

/* Always 0; takes the context. */
BPF_HELPER(int64_t, sample_ebpf_extension_helper_function1, (sample_program_context_t *ctx), 0x10000);
/* Offset of the string `find` in the string `buffer`; -1 when absent. */
BPF_HELPER(int64_t, sample_ebpf_extension_find,
	   (void *buffer, uint32_t size, void *find, uint32_t find_size), 0x10001);
/* Copy the string `replace` over `buffer` from `position` (never its last
 * byte): 0, or -1 when position is outside the buffer. */
BPF_HELPER(int64_t, sample_ebpf_extension_replace,
	   (void *buffer, uint32_t size, int64_t position, void *replace, uint32_t replace_size),
	   0x10002);
/* The context's helper_data_1, and helper_data_2 + arg: the context reaches
 * these helpers without being passed. */
BPF_HELPER(int64_t, sample_ebpf_extension_helper_implicit_1, (void), 0x10003);
BPF_HELPER(int64_t, sample_ebpf_extension_helper_implicit_2, (uint32_t arg), 0x10004);

#endif
