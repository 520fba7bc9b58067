"""The current task: pid/tgid, uid/gid, comm, the task pointer, and its call stacks.

Values come from `ExecutionContext.task()` (`runtime.task.CurrentTask`):
the host thread unless a test or application set `current_task`. Without
an execution context (bare bytecode) the host's values are used.

`bpf_get_stack` follows the kernel's `__bpf_get_stack`
(kernel/bpf/stackmap.c): flags other than the skip count, BPF_F_USER_STACK
and BPF_F_USER_BUILD_ID give -EINVAL, a size that is not a whole number
of entries -EINVAL, a kernel stack with build ids -EINVAL (the buffer is
zeroed in all three cases); skipping more entries than the stack has is
-EFAULT; otherwise up to size/8 return addresses are copied, the rest of
the buffer zeroed, and the number of bytes copied returned. Build-id
entries (`struct bpf_stack_build_id`) record only the address
(BPF_STACK_BUILD_ID_IP), as the kernel does when it cannot find a build
id.
"""

from __future__ import annotations

import errno

from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..task import TASK_COMM_LEN, CurrentTask
from . import helper_spec

BPF_F_SKIP_FIELD_MASK = 0xFF
BPF_F_USER_STACK = 1 << 8
BPF_F_USER_BUILD_ID = 1 << 11
BPF_STACK_BUILD_ID_IP = 2
BUILD_ID_SIZE = 20
STACK_BUILD_ID_ENTRY = 32
"""sizeof(struct bpf_stack_build_id): status, build id, offset-or-ip."""
PERF_MAX_STACK_DEPTH = 127
"""The default sysctl kernel.perf_event_max_stack."""

_M32 = 0xFFFFFFFF


def current_task(env: HelperEnv) -> CurrentTask:
    """The task the running program sees as `current`."""
    runtime = env.runtime
    return runtime.task() if runtime is not None else CurrentTask.host()


def get_current_pid_tgid(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """tgid << 32 | pid of the current task."""
    return current_task(env).pid_tgid


def get_current_uid_gid(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """gid << 32 | uid of the current task."""
    return current_task(env).uid_gid


def get_current_comm(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy the task's name to r1 (r2 bytes, NUL-padded, always terminated): 0."""
    size = r2 & _M32
    env.memory.check(r1, size, write=True)
    name = current_task(env).comm[: min(size, TASK_COMM_LEN) - 1]
    # strscpy_pad: at most size - 1 bytes of the name, then NULs to the end.
    env.memory.write(r1, name.ljust(size, b"\0"))
    return 0


def get_current_task(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The address of the current task's synthetic `task_struct` (0 without a context)."""
    if env.runtime is None:
        return 0
    return env.runtime.task_struct_address(current_task(env))


def get_stack(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy the kernel (or, with BPF_F_USER_STACK, user) stack to r2 (r3 bytes)."""
    buf, size, flags = r2, r3 & _M32, r4
    env.memory.check(buf, size, write=True)
    user = bool(flags & BPF_F_USER_STACK)
    build_id = bool(flags & BPF_F_USER_BUILD_ID)
    elem = STACK_BUILD_ID_ENTRY if build_id else 8
    if flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID):
        return _clear(env, buf, size, -errno.EINVAL)
    if (build_id and not user) or size % elem:
        return _clear(env, buf, size, -errno.EINVAL)
    task = current_task(env)
    skip = flags & BPF_F_SKIP_FIELD_MASK
    stack = (task.user_stack if user else task.kernel_stack)[:PERF_MAX_STACK_DEPTH]
    if len(stack) < skip:
        return _clear(env, buf, size, -errno.EFAULT)
    ips = stack[skip : skip + size // elem]
    if build_id:
        out = b"".join(
            BPF_STACK_BUILD_ID_IP.to_bytes(4, "little")
            + bytes(BUILD_ID_SIZE)
            + (ip & (1 << 64) - 1).to_bytes(8, "little")
            for ip in ips
        )
    else:
        out = b"".join((ip & (1 << 64) - 1).to_bytes(8, "little") for ip in ips)
    env.memory.write(buf, out.ljust(size, b"\0"))
    return len(out)


def get_stackid(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Store the kernel (or user) stack in stack trace map r2; its id, or -errno.

    The map's `stackid` holds the kernel's rules (kernel/bpf/stackmap.c);
    the stack is the current task's, as `bpf_get_stack` copies it.
    """
    if env.runtime is None:
        raise ProgramFault(f"bpf_get_stackid: 0x{r2:x} is not a map pointer", address=r2)
    try:
        map_ = env.runtime.map_at(r2)
    except ProgramFault as fault:
        raise ProgramFault(f"bpf_get_stackid: {fault.reason}", address=r2) from None
    stackid = getattr(map_, "stackid", None)
    if stackid is None:  # the verifier allows only stack trace maps here
        raise ProgramFault(f"bpf_get_stackid: map {map_.name!r} is not a stack trace map")
    task = current_task(env)
    return stackid(task.user_stack if r3 & BPF_F_USER_STACK else task.kernel_stack, r3)


def _clear(env: HelperEnv, buf: int, size: int, error: int) -> int:
    env.memory.write(buf, bytes(size))
    return error


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.GET_CURRENT_PID_TGID, get_current_pid_tgid),
    helper_spec(HelperId.GET_CURRENT_UID_GID, get_current_uid_gid),
    helper_spec(HelperId.GET_CURRENT_COMM, get_current_comm),
    helper_spec(HelperId.GET_CURRENT_TASK, get_current_task),
    helper_spec(HelperId.GET_STACK, get_stack),
    helper_spec(HelperId.GET_STACKID, get_stackid),
]
"""The helpers of this module."""
