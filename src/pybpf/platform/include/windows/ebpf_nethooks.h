/* eBPF for Windows' program types: their contexts, return values and own
 * helpers, written for pybpf from the platform's documented interface.
 * Addresses and ports are in network byte order. */
#ifndef PYBPF_WINDOWS_EBPF_NETHOOKS_H
#define PYBPF_WINDOWS_EBPF_NETHOOKS_H

#include "bpf_helpers.h"

/* XDP: SEC("xdp"). data/data_end are real pointers here. */
typedef struct xdp_md {
	void *data;
	void *data_end;
	uint64_t data_meta;
	uint32_t ingress_ifindex;
} xdp_md_t;

typedef enum xdp_action { XDP_PASS = 1, XDP_DROP = 2, XDP_TX = 3 } xdp_action_t;

BPF_HELPER(int, bpf_xdp_adjust_head, (xdp_md_t *ctx, int delta), 0x10000);

/* bind: SEC("bind"). The app id is the byte range [app_id_start, app_id_end). */
typedef enum bind_operation {
	BIND_OPERATION_BIND = 0,
	BIND_OPERATION_POST_BIND = 1,
	BIND_OPERATION_UNBIND = 2,
} bind_operation_t;

typedef struct bind_md {
	uint8_t *app_id_start;
	uint8_t *app_id_end;
	uint64_t process_id;
	uint8_t socket_address[16];
	uint8_t socket_address_length;
	bind_operation_t operation;
	uint8_t protocol;
} bind_md_t;

typedef enum bind_action {
	BIND_PERMIT_SOFT = 0,
	BIND_PERMIT = 0,
	BIND_DENY = 1,
	BIND_REDIRECT = 2,
	BIND_PERMIT_HARD = 3,
} bind_action_t;

/* sock_addr: SEC("cgroup/connect4"), connect6, recv_accept4/6, bind4/6, listen4/6,
 * connect_authorization4/6. */
typedef struct bpf_sock_addr {
	uint32_t family;
	union {
		uint32_t msg_src_ip4;
		uint32_t msg_src_ip6[4];
	};
	uint16_t msg_src_port;
	union {
		uint32_t user_ip4;
		uint32_t user_ip6[4];
	};
	uint16_t user_port;
	uint32_t protocol;
	uint32_t compartment_id;
	uint64_t interface_luid;
} bpf_sock_addr_t;

typedef enum ebpf_sock_addr_verdict {
	BPF_SOCK_ADDR_VERDICT_REJECT = 0,
	BPF_SOCK_ADDR_VERDICT_PROCEED_SOFT = 1,
	BPF_SOCK_ADDR_VERDICT_PROCEED_HARD = 2,
} ebpf_sock_addr_verdict_t;

BPF_HELPER(int, bpf_sock_addr_set_redirect_context, (bpf_sock_addr_t *ctx, void *data, uint32_t size), 0x10001);
BPF_HELPER(int, bpf_sock_addr_get_network_context, (bpf_sock_addr_t *ctx, void *out, uint32_t size), 0x10002);

/* sock_ops: SEC("sockops"). */
typedef enum bpf_sock_op_type {
	BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB = 0,
	BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB = 1,
	BPF_SOCK_OPS_CONNECTION_DELETED_CB = 2,
} bpf_sock_op_type_t;

typedef struct bpf_sock_ops {
	bpf_sock_op_type_t op;
	uint32_t family;
	union {
		uint32_t local_ip4;
		uint32_t local_ip6[4];
	};
	uint32_t local_port;
	union {
		uint32_t remote_ip4;
		uint32_t remote_ip6[4];
	};
	uint32_t remote_port;
	uint8_t protocol;
	uint32_t compartment_id;
	uint64_t interface_luid;
} bpf_sock_ops_t;

BPF_HELPER(uint64_t, bpf_sock_ops_get_flow_id, (bpf_sock_ops_t *ctx), 0x10000);

#endif
