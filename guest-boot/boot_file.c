/* What every boot path shares: reading the kernel and initrd files,
 * placing the initrd, writing the command line. Every check happens
 * here, before the VM runs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "boot_file.h"

/* No real kernel comes near this; it bounds the malloc of a bad path
 * (a disk image given as --kernel, say). */
#define BOOT_FILE_MAX (1ULL << 30)

/* Reads exactly @len bytes; returns 0, -errno, or -EIO on a short file. */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len > (1u << 30) ? (1u << 30) : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Opens @path and checks it is a non-empty regular file. */
static int open_regular(const char *path, const char *what, int *fd_out, uint64_t *size,
			struct kv_err *e)
{
	struct stat st;
	int fd, r;

	if (!path || !*path)
		return kv_err_set(e, -EINVAL, "no %s file given", what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return kv_err_set(e, r, "%s: cannot open %s: %s", path, what, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return kv_err_set(e, r, "%s: cannot stat %s: %s", path, what, strerror(-r));
	}
	if (S_ISDIR(st.st_mode))
		r = kv_err_set(e, -EISDIR, "%s: is a directory; the %s must be a file", path, what);
	else if (!S_ISREG(st.st_mode))
		r = kv_err_set(e, -EINVAL, "%s: is not a regular file", path);
	else if (st.st_size == 0)
		r = kv_err_set(e, -EINVAL, "%s: %s file is empty", path, what);
	else
		r = 0;
	if (r) {
		close(fd);
		return r;
	}
	*fd_out = fd;
	*size = (uint64_t)st.st_size;
	return 0;
}

int boot_file_open(const char *path, struct boot_file *f, struct kv_err *e)
{
	uint64_t size;
	int fd, r;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	r = open_regular(path, "kernel", &fd, &size, e);
	if (r)
		return r;
	if (size > BOOT_FILE_MAX) {
		close(fd);
		return kv_err_set(e, -EFBIG, "%s: %llu MiB is too big for a kernel image", path,
				  (unsigned long long)(size / MiB));
	}
	f->fd = fd;
	f->size = size;
	if (fstat(fd, &f->st) < 0)
		memset(&f->st, 0, sizeof(f->st));
	f->head_len = size < BOOT_HEAD_MAX ? (size_t)size : BOOT_HEAD_MAX;
	f->head_buf = malloc(f->head_len);
	if (!f->head_buf) {
		boot_file_free(f);
		return kv_err_set(e, -ENOMEM, "%s: out of memory", path);
	}
	r = boot_file_pread(f, 0, f->head_buf, f->head_len);
	if (r) {
		boot_file_free(f);
		return kv_err_set(e, r, "%s: read failed: %s", path,
				  r == -EIO ? "file shrank while reading" : strerror(-r));
	}
	f->head = f->head_buf;
	return 0;
}

void boot_file_from_memory(struct boot_file *f, const char *path, uint8_t *data, size_t size)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	f->data = data;
	f->size = size;
	f->head = data;
	f->head_len = size;
}

int boot_file_pread(struct boot_file *f, uint64_t off, void *dst, size_t len)
{
	uint8_t *p = dst;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	if (f->fd < 0) {
		memcpy(dst, f->data + off, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(f->fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
		f->bytes_read += (uint64_t)n;
	}
	return 0;
}

int boot_file_copy(struct boot_file *f, uint64_t off, void *dst, size_t len, const char *what,
		   struct kv_err *e)
{
	int r = boot_file_pread(f, off, dst, len);

	if (!r)
		return 0;
	if (r == -EINVAL)
		return kv_err_set(e, r, "%s: %s at 0x%llx+0x%zx lies past the end of the file "
				  "(%llu bytes)", f->path, what, (unsigned long long)off, len,
				  (unsigned long long)f->size);
	return kv_err_set(e, r, "%s: reading %s failed: %s", f->path, what,
			  r == -EIO ? "the file shrank while it was read" : strerror(-r));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

int boot_file_copy_to_zeroed(struct boot_file *f, uint64_t off, void *dst, size_t len,
			     const char *what, struct kv_err *e)
{
	uint64_t pos = off, end = off + len;
	uint8_t *d = dst;

	if (off > f->size || len > f->size - off)
		return boot_file_copy(f, off, dst, len, what, e); /* its error */
	if (f->fd < 0) {
		for (uint64_t o = 0; o < len; o += BOOT_PAGE) {
			size_t n = len - o < BOOT_PAGE ? (size_t)(len - o) : BOOT_PAGE;

			if (!all_zero(f->data + off + o, n))
				memcpy(d + o, f->data + off + o, n);
		}
		return 0;
	}
	while (pos < end) {
		off_t data = lseek(f->fd, (off_t)pos, SEEK_DATA);
		off_t hole;
		int r;

		if (data < 0 && errno == ENXIO)
			break;                       /* a hole up to the end of the file */
		if (data < 0)                        /* no SEEK_DATA here: all data */
			return boot_file_copy(f, pos, d + (pos - off), end - pos, what, e);
		if ((uint64_t)data >= end)
			break;
		hole = lseek(f->fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > end)
			hole = (off_t)end;
		r = boot_file_copy(f, (uint64_t)data, d + ((uint64_t)data - off),
				   (size_t)((uint64_t)hole - (uint64_t)data), what, e);
		if (r)
			return r;
		pos = (uint64_t)hole;
	}
	return 0;
}

void boot_file_free(struct boot_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->head_buf);
	free(f->data);
	f->fd = -1;
	f->data = f->head_buf = NULL;
	f->head = NULL;
	f->head_len = 0;
	f->size = 0;
}

static uint64_t page_down(uint64_t a)
{
	return a & ~(BOOT_PAGE - 1);
}

int boot_place_high(uint64_t size, uint64_t floor, uint64_t ceil,
		    const struct boot_range *busy, unsigned nbusy, uint64_t *addr)
{
	uint64_t cand;
	bool moved;

	if (size == 0 || ceil < floor || ceil - floor < size)
		return -ENOSPC;
	cand = page_down(ceil - size);
	/* Each move goes strictly below one busy range, which then can no
	 * longer overlap: at most nbusy moves. */
	do {
		moved = false;
		if (cand < floor)
			return -ENOSPC;
		for (unsigned i = 0; i < nbusy; i++) {
			if (cand < busy[i].end && cand + size > busy[i].start) {
				if (busy[i].start < size)
					return -ENOSPC;
				cand = page_down(busy[i].start - size);
				moved = true;
				break;
			}
		}
	} while (moved);
	*addr = cand;
	return 0;
}

/* The formats Linux unpacks as an initramfs: cpio (newc, newc with CRC,
 * odc) and the compressors it may be built with. Anything else (a disk
 * image, a kernel, a typo in the path) the kernel would drop with at best a
 * "junk in compressed archive" line, leaving a guest with no /init; better
 * to say so before it boots. Leading zero bytes are padding the kernel skips
 * (an all-zero file unpacks to nothing, which is allowed). */
static bool initrd_magic_known(const uint8_t *p, uint64_t size)
{
	static const struct { const char *magic; size_t len; } known[] = {
		{ "070701", 6 }, { "070702", 6 }, { "070707", 6 }, /* cpio */
		{ "\x1f\x8b", 2 }, { "\x1f\x9e", 2 },         /* gzip */
		{ "\xfd" "7zXZ\0", 6 },                          /* xz */
		{ "\x5d\0\0", 3 },                               /* lzma */
		{ "BZh", 3 },                                     /* bzip2 */
		{ "\x89LZO", 4 },                                 /* lzo */
		{ "\x02\x21\x4c\x18", 4 },                       /* lz4 (legacy) */
		{ "\x04\x22\x4d\x18", 4 },                       /* lz4 (frame) */
		{ "\x28\xb5\x2f\xfd", 4 },                       /* zstd */
	};

	while (size && !*p) {
		p++;
		size--;
	}
	if (!size)
		return true;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (size >= known[i].len && !memcmp(p, known[i].magic, known[i].len))
			return true;
	return false;
}

int boot_initrd_load(const struct guest_mem *gm, const char *path,
		     const void *extra, size_t extra_len, uint64_t ceil,
		     const struct boot_range *busy, unsigned nbusy,
		     struct boot_initrd *out, struct kv_err *e)
{
	uint64_t file_size, size, addr;
	uint8_t *dst;
	int fd, r;

	/* No file: the in-memory archive alone (kvmini's own initramfs). */
	if (!path) {
		fd = -1;
		file_size = 0;
	} else {
		r = open_regular(path, "initrd", &fd, &file_size, e);
		if (r)
			return r;
	}
	/* The kernel looks for a following archive's header at a 4-aligned
	 * offset and skips the zeros before it. */
	size = file_size;
	if (extra_len)
		size = ((file_size + 3) & ~3ULL) + extra_len;
	r = boot_place_high(size, LAYOUT_HIGHMEM_START, ceil, busy, nbusy, &addr);
	dst = r ? NULL : gm_ptr(gm, addr, size);
	if (!dst) {
		if (fd >= 0)
			close(fd);
		return kv_err_set(e, -ENOSPC,
				  "%s: initrd is %llu MiB (%llu bytes) and does not fit in guest "
				  "memory below 0x%llx next to the kernel: raise --memory",
				  path ? path : "kvmini's initramfs",
				  (unsigned long long)((size + MiB - 1) / MiB),
				  (unsigned long long)size, (unsigned long long)ceil);
	}
	r = fd >= 0 ? read_full(fd, dst, file_size) : 0;
	if (fd >= 0)
		close(fd);
	if (r)
		return kv_err_set(e, r, "%s: read failed: %s", path,
				  r == -EIO ? "file shrank while reading" : strerror(-r));
	/* The user's file must be an initramfs; kvmini's own archive follows it. */
	if (fd >= 0 && !initrd_magic_known(dst, file_size))
		return kv_err_set(e, -EINVAL,
				  "%s: not an initramfs: neither a cpio archive (newc, odc) nor "
				  "gzip, xz, lzma, bzip2, lzo, lz4 or zstd data", path);
	if (extra_len) {
		memset(dst + file_size, 0, size - extra_len - file_size);
		memcpy(dst + size - extra_len, extra, extra_len);
	}
	out->addr = addr;
	out->size = size;
	return 0;
}

int boot_cmdline_write(const struct guest_mem *gm, const char *cmdline,
		       uint64_t max_len, const char *kernel_path, struct kv_err *e)
{
	size_t len;

	if (!cmdline)
		cmdline = "";
	len = strlen(cmdline);
	if (max_len && len > max_len)
		return kv_err_set(e, -EINVAL,
				  "%s: command line is %zu bytes, this kernel accepts at most %llu",
				  kernel_path, len, (unsigned long long)max_len);
	if (len + 1 > LAYOUT_CMDLINE_MAX)
		return kv_err_set(e, -EINVAL, "command line is %zu bytes, kvmini accepts at most %llu",
				  len, LAYOUT_CMDLINE_MAX - 1);
	if (gm_write(gm, LAYOUT_CMDLINE, cmdline, len + 1))
		return kv_err_set(e, -EFAULT, "guest memory does not cover the command line at 0x%llx",
				  LAYOUT_CMDLINE);
	return 0;
}
