/* virtio-fs (virtio 1.x device 26, devices/virtio/fs.c): a host folder
 * the guest mounts with `mount -t virtiofs TAG /mnt`, served by the FUSE
 * passthrough server of include/kvmini/fuse_server.h (confinement,
 * read-only shares, limits and threads are described there).
 *
 * Queues: 0 is the high-priority queue (Linux sends FORGETs there), 1 ..
 * num_request_queues the request queues; no notification queue, no DAX
 * window. Every chain goes to the server's worker threads and is
 * completed from there (vq_push and the interrupt under the device
 * lock), so a slow host file system stalls neither a vCPU nor the event
 * loop. A device reset waits for the requests already running (their
 * buffers are guest memory), drops the queued ones, and makes the
 * server forget the guest's inodes and handles. */
#ifndef KVMINI_VIRTIO_FS_H
#define KVMINI_VIRTIO_FS_H

#include <stdbool.h>

#include "kvmini/err.h"
#include "kvmini/fuse_server.h"
#include "kvmini/virtio.h"

#define VIRTIO_FS_TAG_MAX 36 /* bytes, the config space field */

struct virtio_fs_cfg {
	const char *path;              /* the host folder */
	const char *tag;               /* 1..36 bytes, no NUL: what the guest mounts */
	bool readonly;
	enum fuse_cache cache;
	unsigned num_request_queues;   /* 0: 1; at most VIRTIO_MAX_QUEUES - 1 */
	unsigned nr_workers;           /* 0: FUSE_SERVER_DEFAULT_WORKERS */
	unsigned max_inodes, max_handles; /* 0: the server's defaults */
	unsigned index;                /* for names: virtio-fs0, ... */
	/* Each worker thread calls this first (the VM's seccomp filter for
	 * them); NULL: nothing. */
	int (*thread_enter)(void *ctx, struct kv_err *e);
	void *thread_ctx;
};

int virtio_fs_create(const struct virtio_fs_cfg *cfg, const struct guest_mem *mem,
		     struct evloop *loop, struct virtio_dev *dev, struct kv_err *e) KV_MUST_CHECK;

/* Requests taken from the queues and not yet completed (tests). */
unsigned virtio_fs_in_flight(struct virtio_dev *dev);

/* What the device did since it was made (--report): how the guest's
 * requests arrived and were answered, and the requests by FUSE opcode. */
struct virtio_fs_counts {
	char tag[VIRTIO_FS_TAG_MAX + 1];
	uint64_t notifications; /* queue notifications handled (kicks that
				 * arrive together count once) */
	uint64_t chains;        /* requests taken from the queues */
	uint64_t interrupts;    /* completions that interrupted the driver */
	uint64_t ops[FUSE_SERVER_NR_OPCODES]; /* by opcode (fuse_server_op_counts) */
};
void virtio_fs_counts(struct virtio_dev *dev, struct virtio_fs_counts *out);

#endif
