/* virtio-blk (devices/virtio/block.c) over a disk (kvmini/disk.h). */
#ifndef KVMINI_VIRTIO_BLK_H
#define KVMINI_VIRTIO_BLK_H

#include <stdbool.h>
#include "kvmini/disk_engine.h"
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct disk;
struct evloop;

/* virtio-blk on a raw image. virtio_blk_create fills a caller-owned
 * virtio_dev; virtio_dev_fini releases it. */
struct virtio_blk_cfg {
	const char *path;
	bool readonly;          /* VIRTIO_BLK_F_RO, image opened O_RDONLY */
	bool snapshot;          /* writes go to a private overlay deleted at exit */
	unsigned index;         /* for names: virtio-blk0, ... */
	enum disk_engine_kind engine; /* 0: Linux AIO (synchronous without it) */
};
/* @loop (never NULL) gets the disk's completions and the queue's
 * resumptions; every request slot is allocated here. */
int virtio_blk_create(const struct virtio_blk_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

/* Tests: the disk under the device. */
struct disk *virtio_blk_disk(struct virtio_dev *d);

#endif
