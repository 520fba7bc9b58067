// category: asm_basics — instruction-level rules: registers, jumps, opcodes, division
#include "common.h"

// r0 set before exit
SEC("xdp") __naked int ok_r0_set(void) { asm volatile("r0 = 2; exit;" ::: "memory"); }
// exit with r0 never written (check_reg_arg: R0 !read_ok)
SEC("xdp") __naked int bad_r0_unset(void) { asm volatile("exit;" ::: "memory"); }
// reads r5, never written at entry
SEC("xdp") __naked int bad_uninit_r5(void) { asm volatile("r0 = r5; exit;" ::: "memory"); }
// r1 is clobbered by a helper call, then read
SEC("xdp") __naked int bad_r1_after_call(void)
{
	asm volatile("call %[f]; r0 = r1; exit;" :: [f] "i"(BPF_FUNC_ktime_get_ns) : "memory");
}
// r6 survives a helper call (callee-saved)
SEC("xdp") __naked int ok_r6_after_call(void)
{
	asm volatile("r6 = 1; call %[f]; r0 = r6; exit;" :: [f] "i"(BPF_FUNC_ktime_get_ns) : "memory");
}
// goto past the end of the program
SEC("xdp") __naked int bad_jump_past_end(void) { asm volatile("r0 = 0; goto +5; exit;" ::: "memory"); }
// goto before the first instruction
SEC("xdp") __naked int bad_jump_before_start(void) { asm volatile("r0 = 0; goto -3; exit;" ::: "memory"); }
// conditional jump over one instruction, both paths exit
SEC("xdp") __naked int ok_cond_jump(void)
{
	asm volatile("r0 = 1; if r1 == 0 goto +1; r0 = 2; exit;" ::: "memory");
}
// an instruction no path reaches (check_cfg: unreachable insn)
SEC("xdp") __naked int bad_unreachable(void) { asm volatile("r0 = 0; exit; r0 = 1; exit;" ::: "memory"); }
// the last instruction falls off the end
SEC("xdp") __naked int bad_fall_off_end(void) { asm volatile("r0 = 0; if r1 == 0 goto +1; exit; r0 = 1;" ::: "memory"); }
// jump to itself on one path: an infinite loop (back-edge without progress)
SEC("xdp") __naked int bad_goto_self(void) { asm volatile("r0 = 0; if r1 == 0 goto +1; goto -1; exit;" ::: "memory"); }
// writes the frame pointer
SEC("xdp") __naked int bad_write_r10(void) { asm volatile("r10 = 0; r0 = 0; exit;" ::: "memory"); }
// r10 copied and moved in another register is fine
SEC("xdp") __naked int ok_copy_r10(void) { asm volatile("r1 = r10; r1 += -8; r0 = 0; *(u64 *)(r1 + 0) = r0; exit;" ::: "memory"); }
// division by an immediate zero (check_alu_op: div by zero)
SEC("xdp") __naked int bad_div_imm_zero(void) { asm volatile("r0 = 7; r0 /= 0; exit;" ::: "memory"); }
// modulo by an immediate zero
SEC("xdp") __naked int bad_mod_imm_zero(void) { asm volatile("r0 = 7; r0 %%= 0; exit;" ::: "memory"); }
// 32-bit division by an immediate zero
SEC("xdp") __naked int bad_div32_imm_zero(void) { asm volatile("w0 = 7; w0 /= 0; exit;" ::: "memory"); }
// division by a register that may be zero: defined at run time (result 0)
SEC("xdp") __naked int ok_div_reg_zero(void) { asm volatile("r0 = 7; r2 = 0; r0 /= r2; exit;" ::: "memory"); }
// division by a non-zero immediate
SEC("xdp") __naked int ok_div_imm(void) { asm volatile("r0 = 7; r0 /= 3; r0 %%= 2; exit;" ::: "memory"); }
// a call to a helper id the kernel does not have
SEC("xdp") __naked int bad_unknown_helper(void) { asm volatile("call 999; r0 = 0; exit;" ::: "memory"); }
// a shift by an immediate larger than the width (check_alu_op: invalid shift)
SEC("xdp") __naked int bad_shift_too_far(void) { asm volatile("r0 = 1; r0 <<= 64; exit;" ::: "memory"); }
// a shift within range
SEC("xdp") __naked int ok_shift(void) { asm volatile("r0 = 1; r0 <<= 63; r0 >>= 63; exit;" ::: "memory"); }
// returns the ctx pointer from xdp: a pointer leak root is allowed
SEC("xdp") __naked int ok_return_ctx_ptr_root(void) { asm volatile("r0 = r1; exit;" ::: "memory"); }
// 64-bit immediate load, then use
SEC("xdp") __naked int ok_ld_imm64(void) { asm volatile("r0 = 0x100000002 ll; r0 >>= 32; exit;" ::: "memory"); }
// a dereference of a scalar
SEC("xdp") __naked int bad_scalar_deref(void) { asm volatile("r1 = 100; r0 = *(u64 *)(r1 + 0); exit;" ::: "memory"); }

char _license[] SEC("license") = "GPL";
