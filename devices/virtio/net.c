/* virtio-net (virtio 1.x §5.1) on a network backend (kvmini/net_backend.h:
 * a tap, or passt's stream): queue 0 receives (backend -> guest), queue 1
 * transmits (guest -> backend); no control queue.
 *
 * Packets cross the backend interface with their 12-byte
 * virtio_net_hdr_v1, as the rings carry them; a tap passes it through, so
 * checksum and segmentation offloads cost nothing here; a backend that
 * has no offloads is offered to the guest without them (and with the MTU
 * its peer assigns). We only fill num_buffers.
 *
 * Everything runs on the event-loop thread under dev->lock: kicks come
 * through queue_notify, backend readiness through virtio_net_backend_event.
 * A backend that closes or fails stops the NIC (its packets are dropped),
 * never the VM.
 *
 * Receive: with MRG_RXBUF we keep a stash of popped receive chains big
 * enough for the largest packet and readv straight into them; a packet
 * then takes as many chains as it needs (num_buffers). When the guest
 * has posted less than that, or without MRG_RXBUF when a chain is
 * smaller than the largest packet, the packet is read into a host
 * buffer first and copied once it fits. With no buffers at all, backend
 * input is not watched until the guest kicks queue 0.
 *
 * Guest mistakes: a ring rule broken (vq_pop fails) puts the device into
 * NEEDS_RESET; a chain of the wrong shape for its queue (readable parts
 * in a receive chain, writable parts or a bad length in a transmit
 * chain) is returned unused and logged, rate-limited, the device goes on. */
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvmini/event_loop.h"

#include "net_priv.h"

/* ---------------- event registration ---------------- */

void vnet_update_events(struct vnet *n)
{
	uint32_t ev = 0;

	if (n->rx_on)
		ev |= EPOLLIN;
	if (n->tx_blocked || n->tx_more || n->tx_flush_wait)
		ev |= EPOLLOUT;
	if (!n->registered || ev == n->events)
		return;
	if (evloop_mod(n->dev->loop, n->be->fd, ev) < 0) {
		LOG_ERR("%s: cannot change the polling of %s", n->dev->name, n->be->label);
		return;
	}
	n->events = ev;
}

void vnet_backend_gone(struct vnet *n, int err)
{
	char why[256];

	if (n->be_gone)
		return;
	n->be_gone = true;
	if (n->registered) {
		/* A closed or failed fd stays readable or in error forever:
		 * watching it would spin the loop thread. */
		evloop_del(n->dev->loop, n->be->fd);
		n->registered = false;
	}
	n->rx_on = n->tx_blocked = n->tx_more = n->tx_flush_wait = false;
	if (n->be->ops->describe_end)
		n->be->ops->describe_end(n->be, why, sizeof(why));
	else if (err && err != -EPIPE)
		snprintf(why, sizeof(why), "%s", strerror(-err));
	else
		snprintf(why, sizeof(why), "it was closed or went away");
	LOG_WARN("%s: %s stopped: %s; the NIC drops every packet from now on (the VM runs on)",
		 n->dev->name, n->be->label, why);
}

static void tx_drop(struct vnet *n, const char *why)
{
	n->tx_dropped++;
	LOG_GUEST(&n->dev->rl, "%s: dropped a transmitted packet (chain %u): %s (%lu dropped)",
		  n->dev->name, n->tx_chain.head, why, n->tx_dropped);
}

/* Hands n->tx_chain to the backend. false when the backend is full
 * (keep the chain, wait for EPOLLOUT). */
static bool tx_send(struct vnet *n)
{
	struct vq_chain *c = &n->tx_chain;
	int r;

	if (c->nr_in) {
		tx_drop(n, "it has device-writable parts");
		return true;
	}
	if (c->out_len < VNET_HDR_LEN || c->out_len > VNET_MAX_PACKET) {
		tx_drop(n, "bad length");
		return true;
	}
	if (n->be_gone) {
		n->tx_dropped++;        /* said once, in vnet_backend_gone */
		return true;
	}
	r = n->be->ops->send(n->be, c->iov, c->nr_out, c->out_len);
	if (r == 0)
		return false;
	if (r == -EPIPE)
		vnet_backend_gone(n, r);
	else if (r == -EMSGSIZE)
		tx_drop(n, "its frame is shorter than an Ethernet header or longer than the backend carries");
	else if (r < 0)
		tx_drop(n, strerror(-r));
	return true;
}

/* Writes out what the backend gathered during a transmit batch. */
static void tx_flush(struct vnet *n)
{
	int r;

	if (n->be_gone || !n->be->ops->flush)
		return;
	r = n->be->ops->flush(n->be);
	n->tx_flush_wait = r == 0;
	if (r < 0)
		vnet_backend_gone(n, r);
}

static void net_tx(struct vnet *n)
{
	struct virtq *vq = &n->dev->vqs[TXQ];
	unsigned budget = NET_BUDGET;
	bool pushed = false;

	if (n->tx_blocked)
		return;         /* EPOLLOUT resumes us */
	n->tx_more = false;
	vq_disable_kicks(vq);
	for (;;) {
		if (!n->tx_have) {
			int r = vq_pop(vq, &n->tx_chain, n->tx_iov, VIRTQ_MAX_SIZE);

			if (r < 0) {
				virtio_dev_fail(n->dev, "transmit queue: %s", vq->error);
				break;
			}
			if (r == 0) {
				if (vq_enable_kicks(vq))
					continue;
				break;
			}
			n->tx_have = true;
		}
		if (!tx_send(n)) {
			n->tx_blocked = true;
			break;
		}
		n->tx_have = false;
		if (vq_push(vq, n->tx_chain.head, 0) < 0) {
			virtio_dev_fail(n->dev, "transmit queue: %s", vq->error);
			break;
		}
		pushed = true;
		if (--budget == 0) {
			/* The tap is writable, so EPOLLOUT calls us back at
			 * once, after the loop's other work. */
			n->tx_more = true;
			break;
		}
	}
	tx_flush(n);
	if (pushed)
		virtio_dev_used(n->dev, TXQ);
}

/* ---------------- event loop and ops ---------------- */

void virtio_net_backend_event(void *opaque, uint32_t events)
{
	struct virtio_dev *dev = opaque;
	struct vnet *n = to_vnet(dev);

	pthread_mutex_lock(&dev->lock);
	if ((events & (EPOLLERR | EPOLLHUP)) && n->registered) {
		/* tun reports EPOLLERR only once its interface is gone (ip link
		 * del): every read and write then fails with EBADFD. A stream
		 * reports EPOLLHUP when its peer (passt) closed it. */
		vnet_backend_gone(n, 0);
	} else if (!virtio_dev_live(dev)) {
		n->rx_on = n->tx_blocked = n->tx_more = false;
	} else {
		if (events & EPOLLOUT && n->tx_flush_wait)
			tx_flush(n);
		if (events & EPOLLOUT && !n->tx_flush_wait) {
			n->tx_blocked = false;
			net_tx(n);
		}
		if (events & EPOLLIN && n->rx_on)
			net_rx(n);
	}
	vnet_update_events(n);
	pthread_mutex_unlock(&dev->lock);
}

static void net_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct vnet *n = to_vnet(dev);

	if (!virtio_dev_live(dev))
		return;
	if (q == RXQ) {
		/* New receive buffers: deliver what waits, watch the backend
		 * again. */
		n->rx_on = !n->be_gone;
		net_rx(n);
	} else if (q == TXQ) {
		net_tx(n);
	}
	vnet_update_events(n);
}

static void net_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_vnet(dev)->config + off, len);
}

static void net_config_write(struct virtio_dev *dev, uint32_t off, const void *data,
			     unsigned len)
{
	/* The MAC is writable only with the legacy interface; ignore. */
}

/* The offloads the guest can receive, as TUN_F_* for the backend. */
static unsigned net_guest_offloads(uint64_t f)
{
	unsigned o = 0;

	if (!(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;       /* every segmentation offload needs it */
	o |= TUN_F_CSUM;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (f & BIT(VIRTIO_NET_F_GUEST_ECN) && o & (TUN_F_TSO4 | TUN_F_TSO6))
		o |= TUN_F_TSO_ECN;
	if (f & BIT(VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o;
}

static int net_activate(struct virtio_dev *dev)
{
	struct vnet *n = to_vnet(dev);
	unsigned off = net_guest_offloads(dev->driver_features);

	if (n->be->ops->set_offloads && !n->be_gone) {
		int r = n->be->ops->set_offloads(n->be, off);

		if (r < 0) {
			LOG_ERR("%s: setting the offloads of %s to 0x%x: %s", dev->name,
				n->be->label, off, strerror(-r));
			return r;
		}
	}
	n->mrg = dev->driver_features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	n->rx_on = !n->be_gone;
	vnet_update_events(n);
	return 0;
}

static void net_reset(struct virtio_dev *dev)
{
	struct vnet *n = to_vnet(dev);

	/* The rings are gone: forget chains without pushing them. */
	n->stash.nr = n->stash.nr_iov = 0;
	n->stash.space = 0;
	n->pending_len = 0;
	n->tx_have = n->tx_blocked = n->tx_more = false;
	n->rx_on = n->rx_pushed = false;
	n->mrg = false;
	vnet_update_events(n);
	if (n->be->ops->set_offloads && !n->be_gone) {
		int r = n->be->ops->set_offloads(n->be, 0);

		if (r < 0)
			LOG_WARN("%s: clearing the offloads of %s: %s", dev->name, n->be->label,
				 strerror(-r));
	}
}

static void net_destroy(struct virtio_dev *dev)
{
	struct vnet *n = to_vnet(dev);

	if (!n)
		return;
	if (n->registered)
		evloop_del(dev->loop, n->be->fd);
	net_backend_destroy(n->be);
	free(n);
	dev->priv = NULL;
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.destroy = net_destroy,
};

static uint64_t net_features(unsigned tap_offloads, uint16_t mtu)
{
	uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
		     BIT(VIRTIO_NET_F_MRG_RXBUF);

	if (mtu)
		f |= BIT(VIRTIO_NET_F_MTU);

	/* Writes with a partial checksum or a GSO header are accepted by any
	 * tap; receiving them is what TUNSETOFFLOAD enables. Offer both
	 * directions only when the tap took the flags. */
	if (tap_offloads & TUN_F_CSUM)
		f |= BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM);
	if (tap_offloads & TUN_F_TSO4)
		f |= BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO4);
	if (tap_offloads & TUN_F_TSO6)
		f |= BIT(VIRTIO_NET_F_GUEST_TSO6) | BIT(VIRTIO_NET_F_HOST_TSO6);
	if (tap_offloads & TUN_F_TSO_ECN)
		f |= BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_HOST_ECN);
	if (tap_offloads & TUN_F_UFO)
		f |= BIT(VIRTIO_NET_F_GUEST_UFO) | BIT(VIRTIO_NET_F_HOST_UFO);
	return f;
}

static int net_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6)
		return -errno ? -errno : -EIO;
	mac[0] = (mac[0] & 0xfe) | 0x02;        /* unicast, locally administered */
	return 0;
}

int virtio_net_create(const struct virtio_net_cfg *cfg, struct net_backend *be,
		      const struct guest_mem *mem, struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e)
{
	struct vnet *n = calloc(1, sizeof(*n));
	char name[32];
	int r;

	if (!n) {
		r = kv_err_set(e, -ENOMEM, "%s: out of memory", be->label);
		net_backend_destroy(be);
		return r;
	}
	n->dev = dev;
	n->be = be;
	if (cfg->mac_set) {
		memcpy(n->config.mac, cfg->mac, 6);
	} else if ((r = net_random_mac(n->config.mac)) < 0) {
		kv_err_set(e, r, "%s: no random MAC (getrandom): %s", be->label, strerror(-r));
		net_backend_destroy(be);
		free(n);
		return r;
	}
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	n->config.mtu = htole16(be->mtu);
	snprintf(name, sizeof(name), "virtio-net%u", cfg->index);
	virtio_dev_init(dev, name, VIRTIO_ID_NET, net_features(be->offloads, be->mtu), 2,
			NET_QUEUE_SIZE, sizeof(n->config), &net_ops, n, mem, loop);
	if (loop) {
		r = evloop_add(loop, be->fd, 0, virtio_net_backend_event, dev);
		if (r < 0) {
			kv_err_set(e, r, "%s: watching %s: %s", name, be->label, strerror(-r));
			virtio_dev_fini(dev);   /* destroy releases the backend and n */
			return r;
		}
		n->registered = true;
	}
	return 0;
}
