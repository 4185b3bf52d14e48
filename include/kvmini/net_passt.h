/* --net user: passt (https://passt.top, Debian package passt) as the
 * network of a guest, started by kvmini on one end of a socketpair
 * (devices/net/passt.c). */
#ifndef KVMINI_NET_PASST_H
#define KVMINI_NET_PASST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/err.h"
#include "kvmini/net_backend.h"

#define NET_MAX_FORWARDS 16

struct net_forward {
	bool udp;
	char host_addr[46];     /* empty: every address */
	uint16_t host_port, guest_port;
};

struct net_user_cfg {
	const char *passt;      /* the binary: NULL for "passt" in $PATH */
	struct net_forward fwd[NET_MAX_FORWARDS];
	unsigned nr_fwd;
};

/* Starts passt on one end of a socketpair (passt --fd, in the
 * foreground, quiet) and returns a stream backend on the other. passt
 * exits when its socket closes, so it never outlives kvmini; destroy
 * reaps it. A missing binary is an error naming the Debian package. */
int net_passt_backend_start(const struct net_user_cfg *cfg, struct net_backend **out,
			    struct kv_err *e) KV_MUST_CHECK;

/* passt's command line for @cfg and socket @fd (pure; for the tests):
 * fills @argv (NULL-terminated, strings in @buf of @buflen) and returns
 * 0, or -ENOSPC. */
int net_passt_argv(const struct net_user_cfg *cfg, const char *binary, int fd,
		   char **argv, size_t max_argv, char *buf, size_t buflen);

#endif
