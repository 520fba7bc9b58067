"""Linux program types and attach types (`enum bpf_prog_type`, `enum bpf_attach_type`).

The numbers are the kernel's UAPI numbers, so a `ProgramType` can be passed
straight to a real `bpf()` syscall in differential tests and compared with
what libbpf reports. Values were taken from the UAPI header that libbpf
vendors (libbpf/libbpf `include/uapi/linux/bpf.h`, commit f7081a6b); the
members that /usr/include/linux/bpf.h (linux-libc-dev 6.1) also defines are
cross-checked against it by tests/test_platform.py, so the tables cannot
drift. Members newer than the installed header are marked below.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["AttachType", "ProgramType"]


class ProgramType(IntEnum):
    """An eBPF program type: Linux's `BPF_PROG_TYPE_<name>` (`enum bpf_prog_type`), then
    eBPF for Windows' types as `WINDOWS_<name>`, and slots for types an application
    registers (`EXTENSION_<n>`, `platform.extensions`), with numbers of pybpf's own.

    The type decides the context a program receives in r1, which helpers it
    may call and which return values are valid (see the rest of `platform/`).
    """

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    # Linux 6.4; newer than the linux-libc-dev 6.1 header on the build machine.
    NETFILTER = 32
    # eBPF for Windows' program types, numbered past Linux's (pybpf's own numbers;
    # Windows numbers them 1 xdp, 2 bind, 3 sock_addr, 4 sock_ops, 999 sample).
    WINDOWS_XDP = 0x1_0001
    WINDOWS_BIND = 0x1_0002
    WINDOWS_SOCK_ADDR = 0x1_0003
    WINDOWS_SOCK_OPS = 0x1_0004
    WINDOWS_SAMPLE = 0x1_03E7
    # Program types an application registers (platform/extensions.py), by slot.
    EXTENSION_0 = 0x2_0000
    EXTENSION_1 = 0x2_0001
    EXTENSION_2 = 0x2_0002
    EXTENSION_3 = 0x2_0003
    EXTENSION_4 = 0x2_0004
    EXTENSION_5 = 0x2_0005
    EXTENSION_6 = 0x2_0006
    EXTENSION_7 = 0x2_0007

    @property
    def c_name(self) -> str:
        """The kernel's spelling, e.g. ``BPF_PROG_TYPE_XDP``."""
        return f"BPF_PROG_TYPE_{self.name}"


class AttachType(IntEnum):
    """A Linux attach type: `BPF_<name>` in `enum bpf_attach_type`.

    Note that value 0 is a real attach type (`BPF_CGROUP_INET_INGRESS`);
    "no expected attach type" is therefore spelled `None` in pybpf, never 0.
    """

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    # Everything below is newer than linux-libc-dev 6.1 (Linux 6.4 onwards).
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56
    TRACE_UPROBE_SESSION = 57
    TRACE_FSESSION = 58
    TRACE_FENTRY_MULTI = 59
    TRACE_FEXIT_MULTI = 60
    TRACE_FSESSION_MULTI = 61

    @property
    def c_name(self) -> str:
        """The kernel's spelling, e.g. ``BPF_CGROUP_INET4_CONNECT``."""
        return f"BPF_{self.name}"
