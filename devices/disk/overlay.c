/* The snapshot overlay: its file, its block map, copy-up and reads that
 * span both places (disk_overlay.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/disk_image.h"
#include "kvmini/disk_io.h"
#include "kvmini/disk_overlay.h"

#define BLOCK DISK_OVERLAY_BLOCK

bool disk_overlay_sparse(const struct disk_overlay *ov)
{
	return ov->map != NULL;
}

bool disk_overlay_present(const struct disk_overlay *ov, uint64_t block)
{
	if (!ov->map)
		return true;
	return ov->map[block / 8] & (1u << (block % 8));
}

enum disk_overlay_src disk_overlay_source(const struct disk_overlay *ov, uint64_t off,
					  uint64_t len)
{
	if (!ov->map)
		return DISK_OVERLAY_ONLY;
	if (len == 0)
		return DISK_OVERLAY_BASE;
	uint64_t first = off / BLOCK, last = (off + len - 1) / BLOCK;
	bool in = disk_overlay_present(ov, first);

	for (uint64_t b = first + 1; b <= last; b++)
		if (disk_overlay_present(ov, b) != in)
			return DISK_OVERLAY_MIXED;
	return in ? DISK_OVERLAY_ONLY : DISK_OVERLAY_BASE;
}

/* Copies block @b from the base into the overlay (the last block may be
 * short when the size is not a multiple of 4 KiB). */
static int copy_up(struct disk_overlay *ov, uint64_t b)
{
	uint64_t off = b * BLOCK;
	size_t len = ov->size - off < BLOCK ? (size_t)(ov->size - off) : BLOCK;
	struct iovec iov = { ov->buf, len };
	int r = disk_preadv_full(ov->base_fd, &iov, 1, off);

	if (r == 0)
		r = disk_pwritev_full(ov->fd, &iov, 1, off);
	return r;
}

int disk_overlay_prepare(struct disk_overlay *ov, uint64_t off, uint64_t len)
{
	if (!ov->map || len == 0)
		return 0;
	uint64_t first = off / BLOCK, last = (off + len - 1) / BLOCK, end = off + len;
	int r = 0;

	/* Only the edge blocks can be partly covered. */
	if (off % BLOCK && !disk_overlay_present(ov, first))
		r = copy_up(ov, first);
	if (r == 0 && end % BLOCK && end < ov->size && !disk_overlay_present(ov, last) &&
	    (last != first || off % BLOCK == 0))
		r = copy_up(ov, last);
	return r;
}

void disk_overlay_commit(struct disk_overlay *ov, uint64_t off, uint64_t len)
{
	if (!ov->map || len == 0)
		return;
	for (uint64_t b = off / BLOCK; b <= (off + len - 1) / BLOCK; b++)
		ov->map[b / 8] |= (uint8_t)(1u << (b % 8));
}

int disk_overlay_read(const struct disk_overlay *ov, const struct iovec *iov, unsigned n,
		      uint64_t off)
{
	uint64_t total, done = 0;

	if (!disk_iov_len(iov, n, &total))
		return -EINVAL;
	while (done < total) {
		uint64_t pos = off + done, b = pos / BLOCK, run_end = (b + 1) * BLOCK;
		bool in = disk_overlay_present(ov, b);

		/* Extend the run over blocks in the same place. */
		while (run_end < off + total && disk_overlay_present(ov, run_end / BLOCK) == in)
			run_end += BLOCK;
		uint64_t len = (run_end < off + total ? run_end : off + total) - pos;
		int r = disk_preadv_part(in ? ov->fd : ov->base_fd, iov, n, done, len, pos);

		if (r < 0)
			return r;
		done += len;
	}
	return 0;
}

int disk_overlay_punch(struct disk_overlay *ov, uint64_t off, uint64_t len)
{
	int r = disk_overlay_prepare(ov, off, len);

	if (r == 0)
		r = disk_punch(ov->fd, off, len);
	if (r == 0)
		disk_overlay_commit(ov, off, len);
	return r;
}

static int overlay_tmpfile(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	/* No O_TMPFILE here: a named file, unlinked at once. */
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/kvmini-snapshot-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int disk_overlay_create(struct disk_overlay *ov, int base_fd, uint64_t size, const char *dir,
			struct kv_err *e)
{
	int r;

	memset(ov, 0, sizeof(*ov));
	ov->fd = overlay_tmpfile(dir);
	if (ov->fd < 0)
		return kv_err_set(e, ov->fd, "cannot create the snapshot overlay in %s: %s "
				  "(set TMPDIR to a writable directory)", dir, strerror(-ov->fd));
	ov->base_fd = base_fd;
	ov->size = size;
	if (ioctl(ov->fd, FICLONE, base_fd) == 0)
		return 0; /* a reflinked copy: every block is in the overlay */
	if (ftruncate(ov->fd, (off_t)size) < 0) {
		r = kv_err_set(e, -errno, "cannot size the snapshot overlay in %s: %s", dir,
			       strerror(errno));
		goto fail;
	}
	ov->nr_blocks = (size + BLOCK - 1) / BLOCK;
	ov->map = calloc((size_t)((ov->nr_blocks + 7) / 8), 1);
	ov->buf = aligned_alloc(BLOCK, BLOCK);
	if (!ov->map || !ov->buf) {
		r = kv_err_set(e, -ENOMEM, "snapshot overlay in %s: out of memory for its block map",
			       dir);
		goto fail;
	}
	return 0;
fail:
	disk_overlay_destroy(ov);
	return r;
}

void disk_overlay_destroy(struct disk_overlay *ov)
{
	if (ov->fd >= 0)
		close(ov->fd);
	ov->fd = -1;
	free(ov->map);
	free(ov->buf);
	ov->map = ov->buf = NULL;
}
