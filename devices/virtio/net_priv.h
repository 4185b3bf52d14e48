/* Private to devices/virtio/net*.c: the virtio-net device's state, shared
 * by the device (net.c: transmit, registers, lifecycle) and its receive
 * path (net_rx.c). See net.c for how the device works. */
#ifndef KVMINI_DEVICES_VIRTIO_NET_PRIV_H
#define KVMINI_DEVICES_VIRTIO_NET_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/net_backend.h"
#include "kvmini/virtio_net.h"
#include "kvmini/virtio_queue.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP 1

#define RXQ 0
#define TXQ 1
#define NET_QUEUE_SIZE 256
/* Packets per callback and queue, so one busy device cannot hold the
 * loop. */
#define NET_BUDGET 256
/* Receive iovecs held at once: readv takes at most IOV_MAX (1024). */
#define RX_POOL_IOVS 1024

#define BIT(n) (1ull << (n))

struct net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;           /* valid with VIRTIO_NET_F_MTU */
} __attribute__((packed));

/* Receive chains popped from the ring and not yet used; their writable
 * iovecs lie in order in iov[]. */
struct rx_stash {
	struct vq_chain c[VIRTQ_MAX_SIZE];
	unsigned nr;
	struct iovec iov[RX_POOL_IOVS];
	unsigned nr_iov;
	size_t space;           /* sum of the chains' in_len */
};

struct vnet {
	struct virtio_dev *dev;
	struct net_backend *be; /* the host side (owned) */
	bool registered;        /* be->fd is in the event loop */
	bool be_gone;           /* the backend closed or failed: drop everything */
	uint32_t events;        /* what the loop watches now */
	struct net_config config;
	bool mrg;               /* MRG_RXBUF negotiated */
	bool rx_on;             /* guest has buffers: watch backend input */
	bool rx_pushed;         /* pushes since the last virtio_dev_used */
	unsigned rx_pops_left;  /* receive chains net_rx may still pop this call */
	struct rx_stash stash;
	size_t pending_len;     /* a packet in bounce[] waiting for buffers */
	uint8_t bounce[VNET_MAX_PACKET];
	/* transmit: a chain the backend refused (full), retried on EPOLLOUT */
	bool tx_have;
	bool tx_blocked;        /* waiting for EPOLLOUT after EAGAIN */
	bool tx_more;           /* budget spent with chains left: resume soon */
	bool tx_flush_wait;     /* the backend holds bytes it could not write yet */
	struct vq_chain tx_chain;
	struct iovec tx_iov[VIRTQ_MAX_SIZE];
	unsigned long rx_dropped, tx_dropped;
};

static inline struct vnet *to_vnet(struct virtio_dev *d)
{
	return d->priv;
}

/* Watches the backend for what the device waits for now (net.c). */
void vnet_update_events(struct vnet *n);
/* The backend closed or failed (@err: its -errno, 0 for an event-loop
 * error): stop watching it, say why once; the guest's packets are
 * dropped from now on and the VM runs on (net.c). */
void vnet_backend_gone(struct vnet *n, int err);
/* Moves packets backend -> guest within the budget (net_rx.c). */
void net_rx(struct vnet *n);

#endif
