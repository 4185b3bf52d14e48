/* virtio-blk backend: opening and locking the raw image, the snapshot
 * copy-on-write overlay, and parsing requests out of descriptor chains.
 * Nothing here touches a virtqueue or the event loop, so it is all
 * unit-testable on plain files. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/log.h"
#include "block_internal.h"

/* ---- plain I/O helpers ---- */

static int rw_full(bool write, int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	struct iovec local[VIRTQ_MAX_SIZE];
	unsigned i = 0;

	if (n > VIRTQ_MAX_SIZE)
		return -EINVAL;
	memcpy(local, iov, n * sizeof(*iov));
	while (i < n) {
		ssize_t r = write ? pwritev(fd, local + i, (int)(n - i), (off_t)off)
				  : preadv(fd, local + i, (int)(n - i), (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* EOF or nothing written: a short transfer */
		off += (uint64_t)r;
		while (i < n && (size_t)r >= local[i].iov_len) {
			r -= (ssize_t)local[i].iov_len;
			i++;
		}
		if (i < n) {
			local[i].iov_base = (uint8_t *)local[i].iov_base + r;
			local[i].iov_len -= (size_t)r;
		}
		while (i < n && local[i].iov_len == 0)
			i++;
	}
	return 0;
}

int blk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_full(false, fd, iov, n, off);
}

int blk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_full(true, fd, iov, n, off);
}

int blk_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		  struct iovec *dst, unsigned cap)
{
	unsigned out = 0;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		if (out == cap)
			return -1;
		size_t take = l - off < len ? l - off : len;

		dst[out].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[out].iov_len = take;
		out++;
		len -= take;
		off = 0;
	}
	return len ? -1 : (int)out;
}

/* ---- snapshot overlay ---- */

bool blk_overlay_block_present(const struct blk_overlay *ov, uint64_t block)
{
	if (!ov->bitmap)
		return true;
	return ov->bitmap[block / 8] & (1u << (block % 8));
}

static void overlay_mark(struct blk_overlay *ov, uint64_t block)
{
	ov->bitmap[block / 8] |= (uint8_t)(1u << (block % 8));
}

int blk_overlay_read_source(const struct blk_overlay *ov, uint64_t off, uint64_t len)
{
	if (!ov->bitmap)
		return 1;
	if (len == 0)
		return 0;
	uint64_t first = off / BLK_SNAP_BLOCK, last = (off + len - 1) / BLK_SNAP_BLOCK;
	bool in = blk_overlay_block_present(ov, first);

	for (uint64_t b = first + 1; b <= last; b++)
		if (blk_overlay_block_present(ov, b) != in)
			return -1;
	return in ? 1 : 0;
}

/* Copies block @b from the base into the overlay (the last block may be
 * short when the size is not a multiple of 4 KiB). */
static int overlay_copy_up(struct blk_overlay *ov, uint64_t b)
{
	uint8_t buf[BLK_SNAP_BLOCK];
	uint64_t off = b * BLK_SNAP_BLOCK;
	size_t len = ov->size - off < BLK_SNAP_BLOCK ? (size_t)(ov->size - off) : BLK_SNAP_BLOCK;
	struct iovec iov = { buf, len };
	int r = blk_preadv_full(ov->base_fd, &iov, 1, off);

	if (r == 0)
		r = blk_pwritev_full(ov->fd, &iov, 1, off);
	return r;
}

int blk_overlay_prepare_write(struct blk_overlay *ov, uint64_t off, uint64_t len)
{
	if (!ov->bitmap || len == 0)
		return 0;
	uint64_t first = off / BLK_SNAP_BLOCK, last = (off + len - 1) / BLK_SNAP_BLOCK;
	uint64_t end = off + len;

	/* Only the edge blocks can be partially covered. */
	if (!blk_overlay_block_present(ov, first) && off % BLK_SNAP_BLOCK) {
		int r = overlay_copy_up(ov, first);
		if (r < 0)
			return r;
		overlay_mark(ov, first);
	}
	if (!blk_overlay_block_present(ov, last) && end % BLK_SNAP_BLOCK && end < ov->size) {
		int r = overlay_copy_up(ov, last);
		if (r < 0)
			return r;
		overlay_mark(ov, last);
	}
	for (uint64_t b = first; b <= last; b++)
		overlay_mark(ov, b);
	return 0;
}

int blk_overlay_preadv(const struct blk_overlay *ov, const struct iovec *iov, unsigned n,
		       uint64_t off)
{
	struct iovec part[VIRTQ_MAX_SIZE];
	size_t total = 0, done = 0;

	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (done < total) {
		uint64_t pos = off + done;
		uint64_t b = pos / BLK_SNAP_BLOCK;
		bool in = blk_overlay_block_present(ov, b);
		uint64_t run_end = (b + 1) * BLK_SNAP_BLOCK;

		/* Extend the run over blocks in the same place. */
		while (run_end < off + total && blk_overlay_block_present(ov, run_end / BLK_SNAP_BLOCK) == in)
			run_end += BLK_SNAP_BLOCK;
		size_t len = (size_t)((run_end < off + total ? run_end : off + total) - pos);
		int cnt = blk_iov_slice(iov, n, done, len, part, VIRTQ_MAX_SIZE);

		if (cnt < 0)
			return -EINVAL;
		int r = blk_preadv_full(in ? ov->fd : ov->base_fd, part, (unsigned)cnt, pos);
		if (r < 0)
			return r;
		done += len;
	}
	return 0;
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

int blk_overlay_create(struct blk_overlay *ov, int base_fd, uint64_t size, const char *dir,
		       struct kv_err *e)
{
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
		int err = -errno;

		close(ov->fd);
		ov->fd = -1;
		return kv_err_set(e, err, "cannot size the snapshot overlay in %s: %s", dir,
				  strerror(-err));
	}
	ov->nr_blocks = (size + BLK_SNAP_BLOCK - 1) / BLK_SNAP_BLOCK;
	ov->bitmap = calloc((size_t)((ov->nr_blocks + 7) / 8), 1);
	if (!ov->bitmap) {
		close(ov->fd);
		ov->fd = -1;
		return kv_err_set(e, -ENOMEM, "snapshot overlay bitmap");
	}
	return 0;
}

void blk_overlay_destroy(struct blk_overlay *ov)
{
	if (ov->fd >= 0)
		close(ov->fd);
	ov->fd = -1;
	free(ov->bitmap);
	ov->bitmap = NULL;
}

/* ---- image ---- */

static void make_serial(struct blk_image *img, const struct stat *st)
{
	/* FNV-1a over dev and inode: stable across runs for the same file. */
	uint64_t h = 0xcbf29ce484222325ull;
	uint64_t v[2] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino };
	const uint8_t *p = (const uint8_t *)v;

	for (size_t i = 0; i < sizeof(v); i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	snprintf(img->serial, sizeof(img->serial), "kvmini-%012llx",
		 (unsigned long long)(h & 0xffffffffffffull));
}

static bool punch_works(int fd, uint64_t size)
{
	/* A hole past the end with KEEP_SIZE changes nothing but tells
	 * whether the filesystem can punch at all. */
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)size,
			 BLK_SNAP_BLOCK) == 0;
}

static int open_checked(const char *path, bool writable, struct kv_err *e)
{
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0)
		return fd;
	int err = -errno;

	switch (-err) {
	case ENOENT:
		return kv_err_set(e, err, "disk image %s does not exist: check the path, or create "
				  "one with 'truncate -s 1G %s'", path, path);
	case EISDIR:
		return kv_err_set(e, err, "disk image %s is a directory: give a raw image file",
				  path);
	case EROFS:
	case EACCES:
	case EPERM:
		if (writable)
			return kv_err_set(e, err, "cannot open disk image %s for writing (%s): "
					  "add ',ro' (or ',snapshot') to use it read-only", path,
					  strerror(-err));
		return kv_err_set(e, err, "cannot read disk image %s (%s): check its permissions",
				  path, strerror(-err));
	default:
		return kv_err_set(e, err, "cannot open disk image %s: %s", path, strerror(-err));
	}
}

static int image_size(struct blk_image *img, const char *path, const struct stat *st,
		      struct kv_err *e)
{
	if (S_ISDIR(st->st_mode))
		return kv_err_set(e, -EISDIR, "disk image %s is a directory: give a raw image file",
				  path);
	if (S_ISBLK(st->st_mode)) {
		uint64_t sz = 0;
		int lbs = 512;

		if (ioctl(img->fd, BLKGETSIZE64, &sz) < 0)
			return kv_err_set(e, -errno, "%s: cannot get the block device size: %s",
					  path, strerror(errno));
		if (ioctl(img->fd, BLKSSZGET, &lbs) == 0 && lbs >= 512 && lbs <= 4096)
			img->blk_size = (uint32_t)lbs;
		img->size = sz;
	} else if (S_ISREG(st->st_mode)) {
		img->size = (uint64_t)st->st_size;
	} else {
		return kv_err_set(e, -EINVAL, "disk image %s is not a regular file or block device",
				  path);
	}
	if (img->size == 0)
		return kv_err_set(e, -EINVAL, "disk image %s is empty: give it a size, e.g. "
				  "'truncate -s 1G %s'", path, path);
	if (img->size % BLK_SECTOR)
		return kv_err_set(e, -EINVAL, "disk image %s is %llu bytes, not a multiple of 512: "
				  "round it up with 'truncate -s %%512 %s'", path,
				  (unsigned long long)img->size, path);
	return 0;
}

static int image_lock(struct blk_image *img, const char *path, bool writable, struct kv_err *e)
{
	if (flock(img->fd, (writable ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return kv_err_set(e, -EBUSY, "disk image %s is in use by another process%s", path,
				  writable ? " (stop it, or add ',snapshot' or ',ro')"
					   : " that writes it (stop it first)");
	return kv_err_set(e, -errno, "cannot lock disk image %s: %s", path, strerror(errno));
}

int blk_image_open(struct blk_image *img, const struct virtio_blk_cfg *cfg, struct kv_err *e)
{
	bool writable = !cfg->readonly && !cfg->snapshot;
	struct stat st;
	int r;

	memset(img, 0, sizeof(*img));
	img->fd = img->direct_fd = img->read_direct_fd = img->write_fd = -1;
	img->ov.fd = -1;
	img->blk_size = BLK_SECTOR;
	img->readonly = cfg->readonly;
	img->snapshot = cfg->snapshot && !cfg->readonly;

	img->fd = open_checked(cfg->path, writable, e);
	if (img->fd < 0)
		return img->fd;
	if (fstat(img->fd, &st) < 0) {
		r = kv_err_set(e, -errno, "%s: %s", cfg->path, strerror(errno));
		goto fail;
	}
	r = image_size(img, cfg->path, &st, e);
	if (r < 0)
		goto fail;
	/* O_NONBLOCK only kept a FIFO from blocking the open. */
	fcntl(img->fd, F_SETFL, fcntl(img->fd, F_GETFL) & ~O_NONBLOCK);
	r = image_lock(img, cfg->path, writable, e);
	if (r < 0)
		goto fail;
	make_serial(img, &st);

	int dfd = open(cfg->path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_DIRECT);

	if (dfd >= 0) {
		struct stat st2;

		/* The same file, not one renamed over it in between. */
		if (fstat(dfd, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev)
			img->direct_fd = dfd;
		else
			close(dfd);
	}
	img->read_direct_fd = img->direct_fd;

	if (img->snapshot) {
		const char *dir = getenv("TMPDIR");

		r = blk_overlay_create(&img->ov, img->fd, img->size, dir && *dir ? dir : "/tmp", e);
		if (r < 0) {
			kv_err_prefix(e, "disk image %s: ", cfg->path);
			goto fail;
		}
		img->have_overlay = true;
		img->write_fd = img->ov.fd;
		if (!img->ov.bitmap) {
			/* A reflinked copy stands alone: read it, not the base. */
			img->read_direct_fd = -1;
		}
		img->discard = punch_works(img->ov.fd, img->size);
	} else if (writable) {
		img->write_fd = img->fd;
		img->discard = S_ISREG(st.st_mode) && punch_works(img->fd, img->size);
	}
	LOG_INFO("disk %s: %llu bytes, %s%s, %s I/O", cfg->path, (unsigned long long)img->size,
		 img->readonly ? "read-only" : img->snapshot ? "snapshot" : "read-write",
		 img->have_overlay ? (img->ov.bitmap ? " (sparse overlay)" : " (reflinked overlay)")
				   : "",
		 img->direct_fd >= 0 ? "O_DIRECT" : "buffered (no O_DIRECT on this filesystem)");
	return 0;
fail:
	blk_image_close(img);
	return r;
}

void blk_image_close(struct blk_image *img)
{
	if (img->have_overlay)
		blk_overlay_destroy(&img->ov);
	img->have_overlay = false;
	if (img->direct_fd >= 0)
		close(img->direct_fd);
	if (img->fd >= 0)
		close(img->fd); /* drops the flock */
	img->fd = img->direct_fd = img->read_direct_fd = img->write_fd = -1;
}

int blk_image_punch(struct blk_image *img, uint64_t off, uint64_t len)
{
	if (img->have_overlay) {
		int r = blk_overlay_prepare_write(&img->ov, off, len);
		if (r < 0)
			return r;
	}
	if (fallocate(img->write_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0)
		return -errno;
	return 0;
}

/* ---- requests ---- */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
} __attribute__((packed));

static bool range_ok(uint64_t sector, uint64_t nr_sectors, uint64_t capacity)
{
	return sector <= capacity && nr_sectors <= capacity - sector;
}

int blk_parse(const struct vq_chain *c, uint64_t capacity, bool readonly, bool discard,
	      struct blk_parsed *p, const char **why)
{
	struct blk_hdr h;

	memset(p, 0, sizeof(*p));
	*why = NULL;
	if (c->in_len == 0) {
		*why = "no writable byte for the status";
		return -EINVAL;
	}
	if (c->out_len < BLK_HDR_LEN ||
	    vq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
		*why = "request header shorter than 16 bytes";
		return VIRTIO_BLK_S_IOERR;
	}
	p->type = le32toh(h.type);
	p->sector = le64toh(h.sector);
	size_t out_data = c->out_len - BLK_HDR_LEN, in_data = c->in_len - 1;

	switch (p->type) {
	case VIRTIO_BLK_T_IN:
		if (out_data) {
			*why = "read request with readable data after the header";
			return VIRTIO_BLK_S_IOERR;
		}
		p->data_len = in_data;
		break;
	case VIRTIO_BLK_T_OUT:
		if (in_data) {
			*why = "write request with writable buffers before the status";
			return VIRTIO_BLK_S_IOERR;
		}
		if (readonly) {
			*why = "write to a read-only disk";
			return VIRTIO_BLK_S_IOERR;
		}
		p->data_len = out_data;
		break;
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		p->data_len = in_data < BLK_ID_LEN ? in_data : BLK_ID_LEN;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!discard || readonly) {
			*why = "discard/write-zeroes not offered";
			return VIRTIO_BLK_S_UNSUPP;
		}
		p->data_len = out_data;
		return VIRTIO_BLK_S_OK; /* segments: blk_parse_segments */
	default:
		*why = "unknown request type";
		return VIRTIO_BLK_S_UNSUPP;
	}
	if (p->data_len % BLK_SECTOR) {
		*why = "data length not a multiple of 512";
		return VIRTIO_BLK_S_IOERR;
	}
	if (!range_ok(p->sector, p->data_len / BLK_SECTOR, capacity)) {
		*why = "sectors beyond the end of the disk";
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

int blk_parse_segments(const struct vq_chain *c, uint64_t capacity, uint32_t type,
		       struct blk_discard_seg *segs, unsigned *nr, const char **why)
{
	size_t len = c->out_len - BLK_HDR_LEN;

	*nr = 0;
	*why = NULL;
	if (len == 0 || len % sizeof(*segs) || len / sizeof(*segs) > BLK_DISCARD_SEG_MAX) {
		*why = "bad discard/write-zeroes segment count";
		return VIRTIO_BLK_S_IOERR;
	}
	unsigned n = (unsigned)(len / sizeof(*segs));

	if (vq_chain_read(c, BLK_HDR_LEN, segs, len) != len) {
		*why = "short segment list";
		return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < n; i++) {
		segs[i].sector = le64toh(segs[i].sector);
		segs[i].num_sectors = le32toh(segs[i].num_sectors);
		segs[i].flags = le32toh(segs[i].flags);
		if (segs[i].flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) {
			*why = "reserved segment flags set";
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (type == VIRTIO_BLK_T_DISCARD && segs[i].flags) {
			*why = "unmap flag on a discard";
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (segs[i].num_sectors > BLK_DISCARD_SECTORS_MAX ||
		    !range_ok(segs[i].sector, segs[i].num_sectors, capacity)) {
			*why = "segment beyond the end of the disk or too long";
			return VIRTIO_BLK_S_IOERR;
		}
	}
	*nr = n;
	return VIRTIO_BLK_S_OK;
}

uint8_t blk_status_from_result(long res, size_t expected)
{
	if (res < 0 || (size_t)res != expected)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}
