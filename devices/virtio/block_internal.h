/* virtio-blk internals shared by block.c (virtio glue, libaio) and
 * block_backend.c (image open, snapshot overlay, request parsing), and
 * exposed to tests/unit/devices/virtio/test_block.c. */
#ifndef KVMINI_VIRTIO_BLOCK_INTERNAL_H
#define KVMINI_VIRTIO_BLOCK_INTERNAL_H

#include <libaio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/err.h"
#include "kvmini/virtio.h"
#include "kvmini/virtio_blk.h"

#define BLK_SECTOR 512u
#define BLK_HDR_LEN 16u
#define BLK_ID_LEN 20u
#define BLK_SEG_MAX (VIRTQ_MAX_SIZE - 2)
#define BLK_DISCARD_SEG_MAX 32u
#define BLK_DISCARD_SECTORS_MAX 0x400000u /* 2 GiB per segment */
#define BLK_SNAP_BLOCK 4096u

/* ---- snapshot overlay (block_backend.c) ---- */

/* Copy-on-write overlay over a read-only base image. With a reflink
 * clone, the overlay is a whole copy and @bitmap is NULL; otherwise a
 * sparse file of the same size where bit i of @bitmap says 4 KiB block i
 * lives in the overlay. The file is unlinked from birth. */
struct blk_overlay {
	int fd;
	int base_fd;
	uint64_t size;
	uint8_t *bitmap; /* NULL: reflinked, every block in the overlay */
	uint64_t nr_blocks;
};

/* Creates the overlay in @dir (O_TMPFILE, else mkstemp + unlink); tries
 * FICLONE first. */
int blk_overlay_create(struct blk_overlay *ov, int base_fd, uint64_t size, const char *dir,
		       struct kv_err *e) KV_MUST_CHECK;
void blk_overlay_destroy(struct blk_overlay *ov);
bool blk_overlay_block_present(const struct blk_overlay *ov, uint64_t block);
/* Where [off, off+len) reads from: 0 = base only, 1 = overlay only,
 * -1 = mixed (read with blk_overlay_preadv). */
int blk_overlay_read_source(const struct blk_overlay *ov, uint64_t off, uint64_t len);
/* Before writing [off, off+len) to the overlay: copies partially covered
 * blocks not yet present from the base, then marks every touched block. */
int blk_overlay_prepare_write(struct blk_overlay *ov, uint64_t off, uint64_t len) KV_MUST_CHECK;
/* Synchronous read that takes each block from the overlay or the base. */
int blk_overlay_preadv(const struct blk_overlay *ov, const struct iovec *iov, unsigned n,
		       uint64_t off) KV_MUST_CHECK;

/* Full preadv/pwritev (short transfers continue; EOF -> -EIO). */
int blk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off) KV_MUST_CHECK;
int blk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off) KV_MUST_CHECK;

/* ---- image (block_backend.c) ---- */

struct blk_image {
	int fd;            /* buffered, flock held */
	int direct_fd;     /* O_DIRECT on the same file, or -1 */
	int write_fd;      /* where writes go: fd, or the overlay's fd */
	int read_direct_fd;/* O_DIRECT fd for reads of a plain image, or -1 */
	uint64_t size;     /* bytes, a multiple of 512 */
	uint32_t blk_size; /* logical block size */
	bool readonly, snapshot;
	bool discard;      /* fallocate(PUNCH_HOLE) works where writes go */
	bool have_overlay;
	struct blk_overlay ov;
	char serial[BLK_ID_LEN + 1];
};

/* Opens, checks and locks @cfg->path; in snapshot mode creates the
 * overlay in $TMPDIR (default /tmp). */
int blk_image_open(struct blk_image *img, const struct virtio_blk_cfg *cfg,
		   struct kv_err *e) KV_MUST_CHECK;
void blk_image_close(struct blk_image *img);
/* Zeroes (punches) [off, off+len) where writes go; handles the overlay. */
int blk_image_punch(struct blk_image *img, uint64_t off, uint64_t len) KV_MUST_CHECK;

/* ---- requests (block_backend.c) ---- */

struct blk_parsed {
	uint32_t type;
	uint64_t sector;
	size_t data_len;       /* IN/OUT/GET_ID: data bytes; DISCARD/WZ: segment bytes */
};

struct blk_discard_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} __attribute__((packed));

/* Parse, then act: copies the header out of @c and validates it against
 * a disk of @capacity sectors. Returns -EINVAL when the chain has no
 * writable byte for the status (the caller fails the device), otherwise
 * a VIRTIO_BLK_S_* status: OK means act on @p, anything else is the
 * answer. @why names the rule broken (for the rate-limited log). */
int blk_parse(const struct vq_chain *c, uint64_t capacity, bool readonly, bool discard,
	      struct blk_parsed *p, const char **why);
/* Copies and checks the DISCARD / WRITE_ZEROES segments. */
int blk_parse_segments(const struct vq_chain *c, uint64_t capacity, uint32_t type,
		       struct blk_discard_seg *segs, unsigned *nr, const char **why);
/* Host result -> VIRTIO_BLK_S_*: errors and short transfers are IOERR. */
uint8_t blk_status_from_result(long res, size_t expected);
/* The iovecs covering bytes [off, off+len) of @src (n entries) into @dst
 * (cap entries); returns the count, or -1 if it does not fit. */
int blk_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		  struct iovec *dst, unsigned cap);

/* ---- the device (block.c) ---- */

struct blk_dev;
/* Tests: called instead of vq_push/virtio_dev_used for each completion. */
typedef void (*blk_done_hook)(void *opaque, uint16_t head, uint32_t used_len, uint8_t status);
void blk_set_done_hook(struct virtio_dev *d, blk_done_hook hook, void *opaque);
/* Starts one popped chain (copied). Lock held. */
void blk_handle_chain(struct virtio_dev *d, const struct vq_chain *c);
/* Reaps completions (what the eventfd callback does, without the lock). */
void blk_reap(struct virtio_dev *d);
unsigned blk_in_flight(struct virtio_dev *d);
/* Tests: what the device does when io_setup fails (no Linux AIO). */
void blk_use_sync_io(struct virtio_dev *d);

#endif
