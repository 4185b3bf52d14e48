/* virtio-net (devices/virtio/net.c). */
#ifndef KVMINI_VIRTIO_NET_H
#define KVMINI_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct evloop;

/* virtio-net on a tap device. virtio_net_create fills a caller-owned
 * virtio_dev; virtio_dev_fini releases it. */
struct virtio_net_cfg {
	const char *tap;        /* interface name; created when missing and allowed */
	uint8_t mac[6];
	bool mac_set;           /* else a random locally administered MAC */
	unsigned index;
};
int virtio_net_create(const struct virtio_net_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

#endif
