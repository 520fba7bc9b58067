/* The "router" hook of examples/extension_app/router.py, for program authors:
 * SEC("router") programs get a struct request_ctx, may set `route`, return
 * ROUTE_REJECT or ROUTE_ACCEPT, and may call the application's two helpers
 * (numbered from 0x10000, as eBPF for Windows' extensions number theirs). */
#ifndef ROUTER_HOOK_H
#define ROUTER_HOOK_H

#include <linux/types.h>

#define SEC(name) __attribute__((section(name), used))

struct request_ctx {
	__u8 *data;      /* the request path */
	__u8 *data_end;
	__u32 client_id;
	__u16 port;
	__u16 pad;
	__u32 route;     /* writable: the backend the application sends the request to */
	__u32 pad2;
};

enum { ROUTE_REJECT = 0, ROUTE_ACCEPT = 1 };

/* The application's reputation score of the client (negative: bad). */
static long (*bpf_router_client_score)(struct request_ctx *ctx) = (void *)0x10000;
/* Appends `size` bytes at `msg` to the application's log. */
static long (*bpf_router_log)(struct request_ctx *ctx, const void *msg, __u32 size) = (void *)0x10001;

#endif
