// SPDX-License-Identifier: GPL-2.0
/* __kconfig externs of every kind libbpf fills: the kernel version, a
 * tristate, an int, a bool, a string, and a weak option no kernel has. The
 * program copies them into .bss, so a test can compare with the kernel.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern char CONFIG_LOCALVERSION[16] __kconfig __weak;
extern unsigned long long CONFIG_PYBPF_NOT_A_REAL_OPTION __kconfig __weak;

__u64 version, jit, hz, syscall, missing;
char localversion[16];

SEC("xdp")
int read_kconfig(struct xdp_md *ctx)
{
	version = LINUX_KERNEL_VERSION;
	jit = CONFIG_BPF_JIT;
	hz = CONFIG_HZ;
	syscall = CONFIG_BPF_SYSCALL;
	missing = CONFIG_PYBPF_NOT_A_REAL_OPTION;
	__builtin_memcpy(localversion, CONFIG_LOCALVERSION, sizeof(localversion));
	return CONFIG_HZ > 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
