/* virtio-net (devices/virtio/net.c). */
#ifndef KVMINI_VIRTIO_NET_H
#define KVMINI_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct evloop;
struct net_backend;

struct virtio_net_cfg {
	uint8_t mac[6];
	bool mac_set;           /* else a random locally administered MAC */
	unsigned index;
};

/* virtio-net on @be (kvmini/net_backend.h), which it takes over: released
 * on failure and by virtio_dev_fini. Fills a caller-owned virtio_dev.
 * @loop NULL: the backend is not watched (unit tests drive
 * virtio_net_backend_event themselves). */
int virtio_net_create(const struct virtio_net_cfg *cfg, struct net_backend *be,
		      const struct guest_mem *mem, struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

/* The backend fd's event-loop callback, exported so unit tests and the
 * fuzzer can drive it without the loop thread. Takes dev->lock. */
void virtio_net_backend_event(void *dev, uint32_t events);

#endif
