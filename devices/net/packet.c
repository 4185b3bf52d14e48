/* The packet backend: a fd that keeps packet boundaries and carries the
 * 12-byte virtio_net_hdr_v1 in front of each packet (a Linux tap with
 * IFF_VNET_HDR; a SOCK_SEQPACKET socket in the tests). One write or read
 * is one packet, so the header and its offloads pass through unchanged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvmini/net_backend.h"

static int packet_send(struct net_backend *be, const struct iovec *iov, unsigned niov,
		       size_t len)
{
	ssize_t w;

	(void)len;
	do
		w = writev(be->fd, iov, (int)niov);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return 1;
	if (errno == EAGAIN || errno == ENOBUFS)
		return 0;
	return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
}

static ssize_t packet_recv(struct net_backend *be, const struct iovec *iov, unsigned niov)
{
	ssize_t r;

	do
		r = readv(be->fd, iov, (int)niov);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	/* A tap never reads 0; a socket does when its peer closed. */
	return r == 0 ? -EPIPE : r;
}

static int packet_set_offloads(struct net_backend *be, unsigned offloads)
{
	return tap_set_offloads(be->fd, offloads);
}

static void packet_destroy(struct net_backend *be)
{
	close(be->fd);
	free(be);
}

static const struct net_backend_ops packet_ops = {
	.send = packet_send,
	.recv = packet_recv,
	.set_offloads = packet_set_offloads,
	.destroy = packet_destroy,
};

static const struct net_backend_ops packet_ops_no_offloads = {
	.send = packet_send,
	.recv = packet_recv,
	.destroy = packet_destroy,
};

int net_packet_backend_new(int fd, unsigned offloads, const char *label,
			   struct net_backend **out, struct kv_err *e)
{
	struct net_backend *be = calloc(1, sizeof(*be));

	if (!be) {
		close(fd);
		return kv_err_set(e, -ENOMEM, "%s: out of memory", label);
	}
	be->ops = offloads ? &packet_ops : &packet_ops_no_offloads;
	be->fd = fd;
	be->offloads = offloads;
	snprintf(be->label, sizeof(be->label), "%s", label);
	*out = be;
	return 0;
}

int net_tap_backend_open(const char *name, struct net_backend **out, struct kv_err *e)
{
	struct tap_caps caps = { 0 };
	char label[64];
	int fd = tap_open(name, &caps, e);

	if (fd < 0)
		return fd;
	snprintf(label, sizeof(label), "tap '%s'", name);
	return net_packet_backend_new(fd, caps.offloads, label, out, e);
}
