/* Linux programs build against libbpf's headers (libbpf-dev: <bpf/bpf_helpers.h>,
 * <bpf/bpf_endian.h>, <bpf/bpf_tracing.h>) and the kernel's UAPI (<linux/bpf.h>);
 * pybpf loads what they produce unchanged and adds nothing a program must include.
 * This header only pulls those in, so that `-I "$(pybpf include-dir)"` and
 * `#include <pybpf_linux.h>` give a program what libbpf's would. */
#ifndef PYBPF_LINUX_H
#define PYBPF_LINUX_H
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#endif
