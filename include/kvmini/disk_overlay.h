/* The snapshot overlay (devices/disk/overlay.c): a private copy-on-write
 * file over a read-only base image, unlinked from birth so it vanishes
 * with kvmini (even on kill -9). With a reflink (FICLONE) the overlay is
 * a whole copy; otherwise it is a sparse file of the same size with a
 * map of which 4 KiB blocks it holds, the rest being read from the base.
 *
 * The map only ever says "in the overlay" for a block whose data is
 * really there: a writer copies the block's edges up (prepare), writes,
 * and marks it (commit) only once that write has succeeded. Keeping two
 * writers of one block apart is the caller's job (disk.c orders them);
 * nothing here allocates after create. */
#ifndef KVMINI_DISK_OVERLAY_H
#define KVMINI_DISK_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/err.h"

#define DISK_OVERLAY_BLOCK 4096u

struct disk_overlay {
	int fd;
	int base_fd;              /* the image (buffered), not owned */
	uint64_t size;
	uint64_t nr_blocks;
	uint8_t *map;             /* bit i: block i is in the overlay; NULL: all are */
	uint8_t *buf;             /* one block, for copying up */
};

enum disk_overlay_src { DISK_OVERLAY_BASE, DISK_OVERLAY_ONLY, DISK_OVERLAY_MIXED };

/* Creates the overlay file in @dir (O_TMPFILE, else mkstemp + unlink);
 * tries FICLONE first. */
int disk_overlay_create(struct disk_overlay *ov, int base_fd, uint64_t size, const char *dir,
			struct kv_err *e) KV_MUST_CHECK;
void disk_overlay_destroy(struct disk_overlay *ov);

/* True for a sparse overlay (with a map), false for a reflinked copy. */
bool disk_overlay_sparse(const struct disk_overlay *ov);
bool disk_overlay_present(const struct disk_overlay *ov, uint64_t block);
/* Where [@off, @off + @len) is now: all in the base, all in the
 * overlay, or some of each. */
enum disk_overlay_src disk_overlay_source(const struct disk_overlay *ov, uint64_t off,
					  uint64_t len);
/* Before writing [@off, @off + @len) to the overlay: copies the blocks
 * the range covers only partly and the overlay does not hold yet from
 * the base, so the bytes around the write are the base's. Marks nothing.
 * 0 or -errno. */
int disk_overlay_prepare(struct disk_overlay *ov, uint64_t off, uint64_t len) KV_MUST_CHECK;
/* After a successful write of [@off, @off + @len) (prepared): marks every
 * block it touches as held by the overlay. */
void disk_overlay_commit(struct disk_overlay *ov, uint64_t off, uint64_t len);
/* Reads [@off, @off + len of @iov) block run by block run, each from
 * where it is now (synchronously). 0 or -errno. */
int disk_overlay_read(const struct disk_overlay *ov, const struct iovec *iov, unsigned n,
		      uint64_t off) KV_MUST_CHECK;
/* Makes [@off, @off + @len) read as zeroes: prepare, punch a hole in
 * the overlay, commit. 0 or -errno (nothing committed). */
int disk_overlay_punch(struct disk_overlay *ov, uint64_t off, uint64_t len) KV_MUST_CHECK;

#endif
