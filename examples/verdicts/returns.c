// category: returns — return value ranges per program type
#include "common.h"

// cgroup_skb egress returns 1
SEC("cgroup_skb/egress") int ok_ret_cgskb_allow(struct __sk_buff *skb) { return 1; }
// cgroup_skb egress returns 3 (drop + congestion notification, allowed for egress)
SEC("cgroup_skb/egress") int ok_ret_cgskb_egress_cn(struct __sk_buff *skb) { return 3; }
// cgroup_skb ingress returns 2 (ingress allows only 0 or 1)
SEC("cgroup_skb/ingress") int bad_ret_cgskb_ingress_2(struct __sk_buff *skb) { return 2; }
// cgroup_skb egress returns 5
SEC("cgroup_skb/egress") int bad_ret_cgskb_5(struct __sk_buff *skb) { return 5; }
// cgroup_skb returns a value masked to 0..1
SEC("cgroup_skb/ingress") int ok_ret_cgskb_masked(struct __sk_buff *skb) { return skb->len & 1; }
// cgroup_skb returns skb->len, unbounded
SEC("cgroup_skb/ingress") int bad_ret_cgskb_unknown(struct __sk_buff *skb) { return skb->len; }
// connect4 returns 1
SEC("cgroup/connect4") int ok_ret_connect4(struct bpf_sock_addr *ctx) { return 1; }
// connect4 returns 2
SEC("cgroup/connect4") int bad_ret_connect4_2(struct bpf_sock_addr *ctx) { return 2; }
// cgroup/sock_create returns 0
SEC("cgroup/sock_create") int ok_ret_sock_create(struct bpf_sock *sk) { return 0; }
// cgroup/sock_create returns -1
SEC("cgroup/sock_create") int bad_ret_sock_create_neg(struct bpf_sock *sk) { return -1; }
// XDP returns any number (no range check for XDP)
SEC("xdp") int ok_ret_xdp_any(struct xdp_md *ctx) { return 1234; }
// tc returns any number
SEC("tc") int ok_ret_tc_any(struct __sk_buff *skb) { return -1; }
// cgroup_skb returns the ctx pointer
SEC("cgroup_skb/egress") __naked int bad_ret_cgskb_pointer(void) { asm volatile("r0 = r1; exit;" ::: "memory"); }
// sockops returns 1
SEC("sockops") int ok_ret_sockops(struct bpf_sock_ops *ops) { return 1; }
// cgroup/sysctl returns 2
SEC("cgroup/sysctl") int bad_ret_sysctl_2(struct bpf_sysctl *ctx) { return 2; }
// cgroup/sysctl returns 0
SEC("cgroup/sysctl") int ok_ret_sysctl_deny(struct bpf_sysctl *ctx) { return 0; }

char _license[] SEC("license") = "GPL";
