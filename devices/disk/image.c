/* Raw image files: open, check, lock, direct I/O, hole punching
 * (disk_image.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "kvmini/disk_image.h"

static void make_serial(struct disk_image *img, const struct stat *st)
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

static int image_size(struct disk_image *img, const char *path, const struct stat *st,
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
			img->block_size = (uint32_t)lbs;
		img->size = sz;
	} else if (S_ISREG(st->st_mode)) {
		img->size = (uint64_t)st->st_size;
		img->regular = true;
	} else {
		return kv_err_set(e, -EINVAL, "disk image %s is not a regular file or block device",
				  path);
	}
	if (img->size == 0)
		return kv_err_set(e, -EINVAL, "disk image %s is empty: give it a size, e.g. "
				  "'truncate -s 1G %s'", path, path);
	if (img->size % DISK_SECTOR)
		return kv_err_set(e, -EINVAL, "disk image %s is %llu bytes, not a multiple of 512: "
				  "round it up with 'truncate -s %%512 %s'", path,
				  (unsigned long long)img->size, path);
	return 0;
}

static int image_lock(struct disk_image *img, const char *path, bool writable, struct kv_err *e)
{
	if (flock(img->fd, (writable ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return kv_err_set(e, -EBUSY, "disk image %s is in use by another process%s", path,
				  writable ? " (stop it, or add ',snapshot' or ',ro')"
					   : " that writes it (stop it first)");
	return kv_err_set(e, -errno, "cannot lock disk image %s: %s", path, strerror(errno));
}

/* The O_DIRECT descriptor, when the file system has direct I/O and is
 * not tmpfs; -1 otherwise (buffered I/O only). */
static int open_direct(const struct disk_image *img, const char *path, bool writable,
		       const struct stat *st)
{
	struct statfs sf;
	struct stat st2;
	int fd;

	if (fstatfs(img->fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC)
		return -1;
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_DIRECT);
	if (fd < 0)
		return -1;
	/* The same file, not one renamed over it in between. */
	if (fstat(fd, &st2) < 0 || st2.st_ino != st->st_ino || st2.st_dev != st->st_dev) {
		close(fd);
		return -1;
	}
	return fd;
}

int disk_image_open(struct disk_image *img, const char *path, bool writable, struct kv_err *e)
{
	struct stat st;
	int r;

	memset(img, 0, sizeof(*img));
	img->direct_fd = -1;
	img->block_size = DISK_SECTOR;
	img->fd = open_checked(path, writable, e);
	if (img->fd < 0)
		return img->fd;
	if (fstat(img->fd, &st) < 0) {
		r = kv_err_set(e, -errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	r = image_size(img, path, &st, e);
	if (r < 0)
		goto fail;
	/* O_NONBLOCK only kept a FIFO from blocking the open. */
	fcntl(img->fd, F_SETFL, fcntl(img->fd, F_GETFL) & ~O_NONBLOCK);
	r = image_lock(img, path, writable, e);
	if (r < 0)
		goto fail;
	make_serial(img, &st);
	img->direct_fd = open_direct(img, path, writable, &st);
	return 0;
fail:
	disk_image_close(img);
	return r;
}

void disk_image_close(struct disk_image *img)
{
	if (img->direct_fd >= 0)
		close(img->direct_fd);
	if (img->fd >= 0)
		close(img->fd); /* drops the flock */
	img->fd = img->direct_fd = -1;
}

bool disk_punch_works(int fd, uint64_t size)
{
	/* A hole past the end with KEEP_SIZE changes nothing but tells
	 * whether the file system can punch at all. */
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)size, 4096) == 0;
}

int disk_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}
