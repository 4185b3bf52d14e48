/* virtio-blk (devices/virtio/block.c). */
#ifndef KVMINI_VIRTIO_BLK_H
#define KVMINI_VIRTIO_BLK_H

#include <stdbool.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct evloop;

/* virtio-blk on a raw image. virtio_blk_create fills a caller-owned
 * virtio_dev; virtio_dev_fini releases it. */
struct virtio_blk_cfg {
	const char *path;
	bool readonly;          /* VIRTIO_BLK_F_RO, image opened O_RDONLY */
	bool snapshot;          /* writes go to a private overlay deleted at exit */
	unsigned index;         /* for names: virtio-blk0, ... */
};
int virtio_blk_create(const struct virtio_blk_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

#endif
