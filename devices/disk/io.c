/* Whole transfers over iovec lists and iovec arithmetic (disk_io.h). */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "kvmini/disk_io.h"

/* One preadv/pwritev of @iov from @off, retried on EINTR. */
static ssize_t rw_once(bool write, int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	int cnt = n > IOV_MAX ? IOV_MAX : (int)n;

	for (;;) {
		ssize_t r = write ? pwritev(fd, iov, cnt, (off_t)off)
				  : preadv(fd, iov, cnt, (off_t)off);

		if (r >= 0 || errno != EINTR)
			return r < 0 ? -errno : r;
	}
}

/* Moves the rest of a partly done entry, then goes on with whole
 * entries: the caller's list is never modified. */
static int rw_full(bool write, int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	unsigned i = 0;
	size_t skip = 0; /* bytes of iov[i] already moved */

	while (i < n) {
		ssize_t r;

		if (iov[i].iov_len == skip) {
			i++;
			skip = 0;
			continue;
		}
		if (skip) {
			struct iovec part = { (char *)iov[i].iov_base + skip, iov[i].iov_len - skip };

			r = rw_once(write, fd, &part, 1, off);
		} else {
			r = rw_once(write, fd, iov + i, n - i, off);
		}
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EIO; /* EOF, or nothing written: a short transfer */
		off += (uint64_t)r;
		while (i < n && (size_t)r >= iov[i].iov_len - skip) {
			r -= (ssize_t)(iov[i].iov_len - skip);
			i++;
			skip = 0;
		}
		skip += (size_t)r;
	}
	return 0;
}

int disk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_full(false, fd, iov, n, off);
}

int disk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_full(true, fd, iov, n, off);
}

#define PART_MAX 64

int disk_preadv_part(int fd, const struct iovec *iov, unsigned n, uint64_t skip, uint64_t len,
		     uint64_t off)
{
	struct iovec part[PART_MAX];
	unsigned i = 0;

	/* Find where @skip lands. */
	while (i < n && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	while (len > 0) {
		unsigned k = 0;
		uint64_t got = 0;

		for (; k < PART_MAX && i < n && got < len; i++, skip = 0) {
			uint64_t take = iov[i].iov_len - skip;

			if (take > len - got)
				take = len - got;
			part[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, (size_t)take };
			got += take;
			if (skip + take < iov[i].iov_len) { /* stopped inside this entry */
				skip += take;
				break;
			}
		}
		if (got == 0)
			return -EINVAL;
		int r = disk_preadv_full(fd, part, k, off);

		if (r < 0)
			return r;
		off += got;
		len -= got;
	}
	return 0;
}

bool disk_iov_len(const struct iovec *iov, unsigned n, uint64_t *len)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		if (__builtin_add_overflow(sum, iov[i].iov_len, &sum))
			return false;
	*len = sum;
	return true;
}

int disk_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst, unsigned cap)
{
	unsigned out = 0;

	for (unsigned i = 0; i < n && len > 0; i++) {
		uint64_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		if (out == cap)
			return -1;
		uint64_t take = l - off < len ? l - off : len;

		dst[out].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[out].iov_len = (size_t)take;
		out++;
		len -= take;
		off = 0;
	}
	return len ? -1 : (int)out;
}

bool disk_iov_aligned(const struct iovec *iov, unsigned n, uint64_t off, uint32_t align)
{
	if (off % align)
		return false;
	for (unsigned i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % align || iov[i].iov_len % align)
			return false;
	return true;
}
