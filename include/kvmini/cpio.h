/* A newc ("070701") cpio writer into a caller's memory buffer: the extra
 * initramfs archive that carries --exec's command into the guest. Pure:
 * no I/O, unit-tested by a round trip through cpio -i. */
#ifndef KVMINI_CPIO_H
#define KVMINI_CPIO_H

#include <stddef.h>
#include <stdint.h>
#include "kvmini/err.h"

struct cpio_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t next_ino;
	int err;        /* first error (-ENOSPC, -EINVAL); later calls do nothing */
};

/* Header (110 bytes) + name + data, each padded to 4: what one entry
 * named @name with @data_len bytes needs, for sizing the buffer. */
size_t cpio_entry_size(const char *name, size_t data_len);
/* The trailer entry ("TRAILER!!!"). */
size_t cpio_trailer_size(void);

void cpio_init(struct cpio_writer *w, void *buf, size_t cap);
/* @name is relative ("kvmini/exec"), without a leading '/', not empty.
 * @mode holds the permission bits only (e.g. 0755); the type is added. */
int cpio_add_dir(struct cpio_writer *w, const char *name, unsigned mode) KV_MUST_CHECK;
int cpio_add_file(struct cpio_writer *w, const char *name, unsigned mode,
		  const void *data, size_t len) KV_MUST_CHECK;
/* Appends the trailer; the archive is then w->len bytes, a multiple of 4
 * (the kernel wants the next concatenated archive 4-aligned). */
int cpio_finish(struct cpio_writer *w) KV_MUST_CHECK;

#endif
