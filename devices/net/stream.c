/* The stream backend: QEMU's stream protocol on a connected SOCK_STREAM
 * socket (what passt speaks on --fd): each Ethernet frame preceded by its
 * length, 32-bit big-endian, and no virtio_net_hdr, so the guest is
 * offered no offloads and its packets' headers are dropped here.
 *
 * Transmit copies each frame behind its length into one buffer that
 * flush writes at once: the guest's packets of one kick cost one write,
 * and a short write keeps the rest for EPOLLOUT. Receive reads as much as
 * the socket has into a buffer and cuts frames out of it with the parser
 * (stream_parse.c), which never trusts a length. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvmini/net_stream.h"

/* Frames gathered per flush: a few of the largest, many small ones. */
#define STREAM_OUT_SIZE (4 * (4 + NET_STREAM_MAX_FRAME))
#define STREAM_IN_SIZE  (256 * 1024)

struct stream_be {
	struct net_backend be;
	struct net_stream_peer peer;
	bool have_peer;
	size_t out_start, out_end;      /* bytes of out[] not yet written */
	size_t in_start, in_end;        /* bytes of in[] not yet parsed */
	unsigned long dropped_seen;     /* parser.dropped already reported */
	struct net_stream_parser parser;
	uint8_t out[STREAM_OUT_SIZE];
	uint8_t in[STREAM_IN_SIZE];
	uint8_t frame[NET_STREAM_MAX_FRAME];
};

static struct stream_be *to_stream(struct net_backend *be)
{
	return (struct stream_be *)be;
}

static int gone_errno(int err)
{
	return err == EPIPE || err == ECONNRESET || err == ENOTCONN ? -EPIPE : -err;
}

static int stream_flush(struct net_backend *be)
{
	struct stream_be *s = to_stream(be);

	while (s->out_start < s->out_end) {
		ssize_t w = write(be->fd, s->out + s->out_start, s->out_end - s->out_start);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		if (w <= 0)
			return w < 0 ? gone_errno(errno) : -EPIPE;
		s->out_start += (size_t)w;
	}
	s->out_start = s->out_end = 0;
	return 1;
}

/* Room for @need more bytes at the end of out[], moving what is pending
 * to the front. */
static bool out_room(struct stream_be *s, size_t need)
{
	if (s->out_start) {
		memmove(s->out, s->out + s->out_start, s->out_end - s->out_start);
		s->out_end -= s->out_start;
		s->out_start = 0;
	}
	return STREAM_OUT_SIZE - s->out_end >= need;
}

/* Copies @len bytes of @iov from offset @skip into @dst. */
static void iov_copy_out(const struct iovec *iov, unsigned niov, size_t skip, uint8_t *dst,
			 size_t len)
{
	for (unsigned i = 0; i < niov && len; i++) {
		size_t n = iov[i].iov_len;

		if (skip >= n) {
			skip -= n;
			continue;
		}
		n -= skip;
		if (n > len)
			n = len;
		memcpy(dst, (const uint8_t *)iov[i].iov_base + skip, n);
		dst += n;
		len -= n;
		skip = 0;
	}
}

static int stream_send(struct net_backend *be, const struct iovec *iov, unsigned niov,
		       size_t len)
{
	struct stream_be *s = to_stream(be);
	size_t flen = len - VNET_HDR_LEN;
	uint8_t *p;

	if (len < VNET_HDR_LEN + NET_STREAM_MIN_FRAME || flen > NET_STREAM_MAX_FRAME)
		return -EMSGSIZE;
	if (!out_room(s, 4 + flen)) {
		int r = stream_flush(be);

		if (r < 0)
			return r;
		if (!out_room(s, 4 + flen))
			return 0;
	}
	p = s->out + s->out_end;
	p[0] = (uint8_t)(flen >> 24);
	p[1] = (uint8_t)(flen >> 16);
	p[2] = (uint8_t)(flen >> 8);
	p[3] = (uint8_t)flen;
	/* No offloads were offered, so the header says nothing: drop it. */
	iov_copy_out(iov, niov, VNET_HDR_LEN, p + 4, flen);
	s->out_end += 4 + flen;
	return 1;
}

/* Copies a zeroed virtio_net_hdr_v1 and the frame into @iov. */
static size_t deliver(struct stream_be *s, size_t flen, const struct iovec *iov, unsigned niov)
{
	static const uint8_t hdr[VNET_HDR_LEN];
	size_t off = 0;

	for (unsigned i = 0; i < niov && off < VNET_HDR_LEN + flen; i++) {
		uint8_t *dst = iov[i].iov_base;
		size_t room = iov[i].iov_len;

		while (room && off < VNET_HDR_LEN + flen) {
			const uint8_t *src = off < VNET_HDR_LEN ? hdr + off : s->frame + off - VNET_HDR_LEN;
			size_t n = off < VNET_HDR_LEN ? VNET_HDR_LEN - off : VNET_HDR_LEN + flen - off;

			if (n > room)
				n = room;
			memcpy(dst, src, n);
			dst += n;
			room -= n;
			off += n;
		}
	}
	return off;
}

static ssize_t stream_recv(struct net_backend *be, const struct iovec *iov, unsigned niov)
{
	struct stream_be *s = to_stream(be);

	for (;;) {
		if (s->in_start < s->in_end) {
			size_t flen;

			s->in_start += net_stream_parse(&s->parser, s->in + s->in_start,
							s->in_end - s->in_start, s->frame, &flen);
			if (flen)
				return (ssize_t)deliver(s, flen, iov, niov);
			if (s->parser.dropped != s->dropped_seen) {
				s->dropped_seen = s->parser.dropped;
				return -EMSGSIZE;
			}
			continue;
		}
		ssize_t r = read(be->fd, s->in, sizeof(s->in));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? 0 : gone_errno(errno);
		if (r == 0)
			return -EPIPE;
		s->in_start = 0;
		s->in_end = (size_t)r;
	}
}

static void stream_describe_end(struct net_backend *be, char *buf, size_t len)
{
	struct stream_be *s = to_stream(be);

	if (s->have_peer && s->peer.describe_end)
		s->peer.describe_end(s->peer.ctx, buf, len);
	else
		snprintf(buf, len, "the peer closed the connection");
}

static void stream_destroy(struct net_backend *be)
{
	struct stream_be *s = to_stream(be);

	close(be->fd);
	if (s->have_peer && s->peer.release)
		s->peer.release(s->peer.ctx);
	free(s);
}

static const struct net_backend_ops stream_ops = {
	.send = stream_send,
	.flush = stream_flush,
	.recv = stream_recv,
	.describe_end = stream_describe_end,
	.destroy = stream_destroy,
};

int net_stream_backend_new(int fd, uint16_t mtu, const char *label,
			   const struct net_stream_peer *peer,
			   struct net_backend **out, struct kv_err *e)
{
	struct stream_be *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		if (peer && peer->release)
			peer->release(peer->ctx);
		return kv_err_set(e, -ENOMEM, "%s: out of memory", label);
	}
	s->be.ops = &stream_ops;
	s->be.fd = fd;
	s->be.mtu = mtu;
	snprintf(s->be.label, sizeof(s->be.label), "%s", label);
	if (peer) {
		s->peer = *peer;
		s->have_peer = true;
	}
	*out = &s->be;
	return 0;
}
