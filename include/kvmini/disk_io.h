/* Plain helpers of the disk layer (devices/disk/io.c): whole transfers
 * over iovec lists, and iovec arithmetic. */
#ifndef KVMINI_DISK_IO_H
#define KVMINI_DISK_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/err.h"

/* preadv/pwritev until all of @iov (@n entries) is moved: short
 * transfers continue, EINTR retries, EOF or a write of nothing is -EIO.
 * 0 or -errno. */
int disk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off) KV_MUST_CHECK;
int disk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off) KV_MUST_CHECK;

/* Reads bytes [@skip, @skip + @len) of the buffers @iov (@n entries)
 * from @off, however many entries that spans. 0 or -errno (-EINVAL:
 * the range is not inside @iov). */
int disk_preadv_part(int fd, const struct iovec *iov, unsigned n, uint64_t skip, uint64_t len,
		     uint64_t off) KV_MUST_CHECK;

/* Total bytes of @iov; false when the sum overflows. */
bool disk_iov_len(const struct iovec *iov, unsigned n, uint64_t *len);
/* The entries covering bytes [@off, @off + @len) of @src (@n entries),
 * written to @dst (room for @cap). Returns the count, or -1 when the
 * range is not inside @src or does not fit @dst. */
int disk_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst, unsigned cap);
/* True when @off and every buffer's address and length are multiples of
 * @align (what O_DIRECT asks). */
bool disk_iov_aligned(const struct iovec *iov, unsigned n, uint64_t off, uint32_t align);

#endif
