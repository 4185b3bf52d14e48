/* virtio-blk requests (virtio 1.x §5.2.6) parsed out of descriptor
 * chains (devices/virtio/block_parse.c): parse, then act. The header and
 * discard segments are copied out of guest memory once and checked
 * against the disk; what comes out is what the device acts on. Pure: no
 * I/O, no device state. */
#ifndef KVMINI_VIRTIO_BLK_PARSE_H
#define KVMINI_VIRTIO_BLK_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/virtio_queue.h"

#define BLK_SECTOR 512u
#define BLK_HDR_LEN 16u
#define BLK_ID_LEN 20u
#define BLK_SEG_MAX (VIRTQ_MAX_SIZE - 2)
#define BLK_DISCARD_SEG_MAX 32u
#define BLK_DISCARD_SECTORS_MAX 0x400000u /* 2 GiB per segment */

/* One DISCARD / WRITE_ZEROES segment, in host byte order. */
struct blk_discard_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} __attribute__((packed));

struct blk_request {
	uint32_t type;              /* VIRTIO_BLK_T_* */
	uint64_t sector;
	uint8_t *status;            /* the last writable byte of the chain */
	uint32_t used_len;          /* bytes written into the chain when it succeeds */
	uint64_t data_len;          /* IN, OUT: data bytes; GET_ID: id bytes to write */
	struct iovec *data;         /* IN, OUT: the data buffers (inside the chain's iovecs) */
	unsigned nr_data;
	unsigned nr_segs;           /* DISCARD, WRITE_ZEROES: segments copied out */
};

/* Copies the header out of @c and checks it against a disk of @capacity
 * sectors that is @readonly and has @discard. Returns -EINVAL when the
 * chain has no writable byte for the status (the device then fails),
 * else a VIRTIO_BLK_S_* status: OK means act on @p, anything else is the
 * answer (@p->status is set). @why names the rule broken, for the
 * rate-limited log. For IN and OUT, trims @c's iovecs in place to the
 * data buffers (@p->data); for DISCARD and WRITE_ZEROES, copies and
 * checks the segments into @segs (room for BLK_DISCARD_SEG_MAX). */
int blk_parse(struct vq_chain *c, uint64_t capacity, bool readonly, bool discard,
	      struct blk_request *p, struct blk_discard_seg *segs, const char **why);

#endif
