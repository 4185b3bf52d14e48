/* A raw disk image file (devices/disk/image.c): opened, checked and
 * locked the way --disk promises (README), with a second O_DIRECT
 * descriptor where the file system has direct I/O. */
#ifndef KVMINI_DISK_IMAGE_H
#define KVMINI_DISK_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/err.h"

#define DISK_SECTOR 512u
#define DISK_SERIAL_LEN 20u

struct disk_image {
	int fd;                 /* buffered; holds the flock */
	int direct_fd;          /* O_DIRECT on the same file, or -1 */
	uint64_t size;          /* bytes, a multiple of 512 */
	uint32_t block_size;    /* logical block size: 512, or a block device's */
	bool regular;           /* a regular file (not a block device) */
	char serial[DISK_SERIAL_LEN + 1];
};

/* Opens @path read-write when @writable (flock exclusive), else
 * read-only (flock shared); refuses what is not a non-empty regular file
 * or block device whose size is a multiple of 512, with a message that
 * names the file and what to do. No O_DIRECT on tmpfs: it has no device
 * below it, only the page cache. */
int disk_image_open(struct disk_image *img, const char *path, bool writable,
		    struct kv_err *e) KV_MUST_CHECK;
void disk_image_close(struct disk_image *img);

/* True when fallocate(PUNCH_HOLE) works on @fd (probed past @size, where
 * it changes nothing). */
bool disk_punch_works(int fd, uint64_t size);
/* Punches [@off, @off + @len) of @fd: the range reads back as zeroes.
 * 0 or -errno. */
int disk_punch(int fd, uint64_t off, uint64_t len) KV_MUST_CHECK;

#endif
