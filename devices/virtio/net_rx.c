/* virtio-net's receive path (backend -> guest): the stash of popped receive
 * chains, mergeable buffers and the bounce buffer (see net.c's header).
 * Runs on the event-loop thread under dev->lock. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvmini/event_loop.h"

#include "net_priv.h"

/* ---------------- receive ---------------- */

static bool stash_full(const struct vnet *n)
{
	return n->stash.nr == VIRTQ_MAX_SIZE ||
	       n->stash.nr >= n->dev->vqs[RXQ].size ||
	       n->stash.nr_iov > RX_POOL_IOVS - VIRTQ_MAX_SIZE;
}

static int rx_return_unused(struct vnet *n, uint16_t head)
{
	struct virtq *vq = &n->dev->vqs[RXQ];

	if (vq_push(vq, head, 0) < 0) {
		virtio_dev_fail(n->dev, "receive queue: %s", vq->error);
		return -EINVAL;
	}
	n->rx_pushed = true;
	return 0;
}

/* Pops receive chains until the stash holds @want bytes, the ring is
 * empty or the stash is full. -EINVAL when the device failed, -EBUSY
 * when this call's pops are spent (a guest re-posting chains that take
 * nothing must not hold the loop). */
static int rx_fill(struct vnet *n, size_t want)
{
	struct virtq *vq = &n->dev->vqs[RXQ];
	struct rx_stash *s = &n->stash;

	while (s->space < want && !stash_full(n)) {
		struct vq_chain *c = &s->c[s->nr];
		int r;

		if (n->rx_pops_left == 0)
			return -EBUSY;
		r = vq_pop(vq, c, s->iov + s->nr_iov, VIRTQ_MAX_SIZE);
		if (r > 0)
			n->rx_pops_left--;

		if (r < 0) {
			virtio_dev_fail(n->dev, "receive queue: %s", vq->error);
			return -EINVAL;
		}
		if (r == 0)
			return 0;
		if (c->nr_out || c->in_len < VNET_HDR_LEN) {
			LOG_GUEST(&n->dev->rl, "%s: receive buffer %u %s: returned unused",
				  n->dev->name, c->head,
				  c->nr_out ? "has device-readable parts" : "is shorter than the header");
			if (rx_return_unused(n, c->head) < 0)
				return -EINVAL;
			continue;
		}
		s->nr_iov += c->nr_in;
		s->space += c->in_len;
		s->nr++;
	}
	return 0;
}

/* Drops the first @k chains of the stash (they went to the used ring). */
static void stash_shift(struct rx_stash *s, unsigned k)
{
	unsigned iovs = 0;

	for (unsigned i = 0; i < k; i++) {
		iovs += s->c[i].nr_in;
		s->space -= s->c[i].in_len;
	}
	memmove(s->iov, s->iov + iovs, (s->nr_iov - iovs) * sizeof(s->iov[0]));
	memmove(s->c, s->c + k, (s->nr - k) * sizeof(s->c[0]));
	s->nr -= k;
	s->nr_iov -= iovs;
	for (unsigned i = 0; i < s->nr; i++)
		s->c[i].iov -= iovs;
}

/* A packet of @len bytes (header included) fills the stash's first
 * chains: set num_buffers, push them. */
static int rx_commit(struct vnet *n, size_t len)
{
	struct virtq *vq = &n->dev->vqs[RXQ];
	struct rx_stash *s = &n->stash;
	uint16_t nbufs;
	size_t left = len;
	unsigned k = 0;

	while (k < s->nr && (left > 0 || k == 0)) {
		left -= left < s->c[k].in_len ? left : s->c[k].in_len;
		k++;
	}
	nbufs = htole16((uint16_t)k);
	vq_chain_write(&s->c[0], 10, &nbufs, sizeof(nbufs));
	/* All k buffers become used at once: a driver that saw the first
	 * (num_buffers = k) before the rest would drop the packet as
	 * truncated (Linux: "rx error: N buffers out of M missing"). */
	left = len;
	for (unsigned i = 0; i < k; i++) {
		size_t w = left < s->c[i].in_len ? left : s->c[i].in_len;

		if (vq_fill(vq, i, s->c[i].head, (uint32_t)w) < 0) {
			virtio_dev_fail(n->dev, "receive queue: %s", vq->error);
			return -EINVAL;
		}
		left -= w;
	}
	if (vq_flush(vq, k) < 0) {
		virtio_dev_fail(n->dev, "receive queue: %s", vq->error);
		return -EINVAL;
	}
	n->rx_pushed = true;
	stash_shift(s, k);
	return 0;
}

static void rx_drop(struct vnet *n, size_t len, const char *why)
{
	n->rx_dropped++;
	LOG_GUEST(&n->dev->rl, "%s: dropped a received packet of %zu bytes: %s (%lu dropped)",
		  n->dev->name, len, why, n->rx_dropped);
}

/* Delivers the packet in bounce[]. 1 when done (delivered or dropped),
 * 0 when it waits for more buffers, -EINVAL when the device failed,
 * -EBUSY when this call's pops are spent. */
static int rx_deliver_pending(struct vnet *n)
{
	struct rx_stash *s = &n->stash;
	size_t len = n->pending_len;
	size_t off = 0;

	int r = rx_fill(n, n->mrg ? len : 1);

	if (r < 0)
		return r;
	if (n->mrg && s->space < len) {
		if (!stash_full(n))
			return 0;
		/* Every buffer the ring can hold is ours and still too little. */
		rx_drop(n, len, "the guest's receive buffers are smaller than the packet");
		n->pending_len = 0;
		return 1;
	}
	if (s->nr == 0)
		return 0;
	if (!n->mrg && s->c[0].in_len < len) {
		rx_drop(n, len, "receive buffer too small and MRG_RXBUF not negotiated");
		n->pending_len = 0;
		return 1;
	}
	for (unsigned i = 0; off < len && i < s->nr; i++)
		off += vq_chain_write(&s->c[i], 0, n->bounce + off, len - off);
	n->pending_len = 0;
	return rx_commit(n, len) < 0 ? -EINVAL : 1;
}

/* One packet from the backend. 1 when one was handled, 0 when the
 * backend has none, -EAGAIN when it waits for buffers, -EINVAL when the
 * device failed, -EBUSY when this call's receive pops are spent. */
static int rx_one(struct vnet *n)
{
	struct rx_stash *s = &n->stash;
	struct iovec bounce = { n->bounce, sizeof(n->bounce) };
	bool direct;
	ssize_t r;

	if (n->pending_len) {
		r = rx_deliver_pending(n);
		return r == 0 ? -EAGAIN : (int)r;
	}
	r = rx_fill(n, n->mrg ? VNET_MAX_PACKET : 1);
	if (r == -EINVAL || (r == -EBUSY && s->nr == 0))
		return (int)r;
	if (s->nr == 0)
		return -EAGAIN;
	direct = n->mrg ? s->space >= VNET_MAX_PACKET : s->c[0].in_len >= VNET_MAX_PACKET;
	if (direct)
		r = n->be->ops->recv(n->be, s->iov, n->mrg ? s->nr_iov : s->c[0].nr_in);
	else
		r = n->be->ops->recv(n->be, &bounce, 1);
	if (r == -EPIPE) {
		vnet_backend_gone(n, (int)r);
		return 0;
	}
	if (r == -EMSGSIZE) {
		rx_drop(n, 0, "the backend sent a malformed packet");
		return 1;
	}
	if (r < 0) {
		LOG_GUEST(&n->dev->rl, "%s: reading %s: %s", n->dev->name, n->be->label,
			  strerror((int)-r));
		return 0;
	}
	if (r == 0)
		return 0;
	if (r < VNET_HDR_LEN || (size_t)r > VNET_MAX_PACKET) {
		rx_drop(n, (size_t)r, "bad length from the backend");
		return 1;
	}
	if (direct)
		return rx_commit(n, (size_t)r) < 0 ? -EINVAL : 1;
	n->pending_len = (size_t)r;
	r = rx_deliver_pending(n);
	return r == 0 ? -EAGAIN : (int)r;
}

void net_rx(struct vnet *n)
{
	struct virtq *vq = &n->dev->vqs[RXQ];
	unsigned budget = NET_BUDGET;
	int r = 1;

	if (n->be_gone)
		return;
	n->rx_pops_left = 2 * vq->size;
	while (budget > 0) {
		r = rx_one(n);
		if (r == 1) {
			budget--;
			continue;
		}
		if (r != -EAGAIN)
			break;
		/* No buffers: stop reading the backend until the guest kicks,
		 * unless buffers arrived before kicks were back on. */
		n->rx_on = false;
		if (!vq_enable_kicks(vq))
			break;
		n->rx_on = true;
		budget--;
	}
	if (r == -EINVAL)
		n->rx_on = false;
	/* Spent, not finished: run again after the loop's other work. A
	 * budget spent may leave frames in a backend's own buffer (the
	 * stream reads many at once), which no EPOLLIN and, with kicks
	 * suppressed, no kick would ever bring back. */
	if (r == -EBUSY || (r == 1 && budget == 0))
		virtio_dev_requeue(n->dev, RXQ);
	if (n->rx_pushed) {
		n->rx_pushed = false;
		virtio_dev_used(n->dev, RXQ);
	}
}
