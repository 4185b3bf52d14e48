/* guest-boot/boot_file.c: the helpers every boot path shares (private
 * to guest-boot/ and its unit tests). */
#ifndef KVMINI_GUEST_BOOT_BOOT_FILE_H
#define KVMINI_GUEST_BOOT_BOOT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "boot structures are written as little-endian host structs");

#define BOOT_PAGE 4096ULL

/* The first bytes of a kernel file, read when it is opened: every
 * header the loaders parse lies in them (a bzImage's setup header at
 * 0x1f1, an ELF header). */
#define BOOT_HEAD_MAX (64 * 1024)

/* A kernel image: an open file whose first bytes are in @head and whose
 * rest is read on demand with boot_file_pread, straight into guest
 * memory; or an image held in memory (an unpacked vmlinux), @fd -1. A
 * file is never mapped: guest RAM holds a copy, so replacing or
 * truncating the file under a running guest changes nothing in it.
 * @path is borrowed, not owned. */
struct boot_file {
	const char *path;
	int fd;               /* -1: the image is @data */
	uint64_t size;
	uint8_t *data;        /* the whole image (memory images only), malloc'd */
	const uint8_t *head;  /* the first @head_len bytes */
	size_t head_len;
	uint8_t *head_buf;    /* what @head points to for a file, malloc'd */
	struct stat st;       /* the file's, when it was opened (the unpack cache key) */
	uint64_t bytes_read;  /* bytes read from the file (its head included) */
};

/* Opens a regular, non-empty file and reads its head; errors name @path. */
int boot_file_open(const char *path, struct boot_file *f, struct kv_err *e) KV_MUST_CHECK;
/* An image in memory: takes @data (malloc'd), freed by boot_file_free. */
void boot_file_from_memory(struct boot_file *f, const char *path, uint8_t *data, size_t size);
/* Copies [@off, @off + @len) of the image to @dst; -EINVAL for a range
 * outside the image, -EIO when the file shrank, -errno. */
int boot_file_pread(struct boot_file *f, uint64_t off, void *dst, size_t len) KV_MUST_CHECK;
/* boot_file_pread with the error set in @e, naming the file and @what. */
int boot_file_copy(struct boot_file *f, uint64_t off, void *dst, size_t len, const char *what,
		   struct kv_err *e) KV_MUST_CHECK;
/* boot_file_copy into memory that is already zero (guest RAM fresh from
 * gm_create): the zeros of the image are not copied. For a file, its
 * holes (SEEK_DATA/SEEK_HOLE) are not read, so a sparse file costs only
 * its data (kvmini's unpacked-kernel cache is written sparse: a vmlinux
 * is a third zeros, its bss); for an image in memory, its all-zero 4 KiB
 * blocks are skipped. */
int boot_file_copy_to_zeroed(struct boot_file *f, uint64_t off, void *dst, size_t len,
			     const char *what, struct kv_err *e) KV_MUST_CHECK;
void boot_file_free(struct boot_file *f);

/* A guest-physical range [start, end) already in use. */
struct boot_range {
	uint64_t start;
	uint64_t end;
};

/* the highest page-aligned address a with floor <= a and
 * a + size <= ceil that overlaps none of @busy. -ENOSPC when none. */
int boot_place_high(uint64_t size, uint64_t floor, uint64_t ceil,
		    const struct boot_range *busy, unsigned nbusy, uint64_t *addr) KV_MUST_CHECK;

/* opens the initrd, places it with boot_place_high below @ceil
 * avoiding @busy, and reads it straight into guest memory, followed
 * (4-aligned) by @extra_len bytes of @extra; out->size covers both.
 * @path NULL: @extra alone is the initrd. */
struct boot_initrd {
	uint64_t addr;
	uint64_t size;
};
int boot_initrd_load(const struct guest_mem *gm, const char *path,
		     const void *extra, size_t extra_len, uint64_t ceil,
		     const struct boot_range *busy, unsigned nbusy,
		     struct boot_initrd *out, struct kv_err *e) KV_MUST_CHECK;

/* copies the NUL-terminated command line to LAYOUT_CMDLINE;
 * @max_len is the kernel's limit without the NUL. */
int boot_cmdline_write(const struct guest_mem *gm, const char *cmdline,
		       uint64_t max_len, const char *kernel_path, struct kv_err *e) KV_MUST_CHECK;

#endif
