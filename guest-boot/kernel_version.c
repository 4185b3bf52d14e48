/* The release of a guest kernel ("6.1.0-57-amd64"), which names its
 * module tree: from a bzImage's setup header (boot protocol field
 * kernel_version, a pointer to "6.1.0-57-amd64 (builder) #1 SMP ...") or
 * from an ELF vmlinux's banner ("Linux version 6.1.0-57-amd64 ..."). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/boot.h"
#include "boot_file.h"
#include "bzimage.h"
#include "elf_pvh.h"

#define BANNER "Linux version "

/* Copies the first word at @p (at most @avail bytes) to @out. */
static int first_word(const uint8_t *p, size_t avail, char *out, size_t len)
{
	size_t n = 0;

	while (n < avail && p[n] > ' ' && p[n] < 0x7f)
		n++;
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The release after the ELF's "Linux version " banner, found by reading
 * the image in chunks (the banner sits in .rodata, anywhere in it). */
static int elf_release(struct boot_file *f, char *out, size_t len)
{
	enum { CHUNK = 1 << 20, KEEP = 256 };
	uint8_t *buf = malloc(CHUNK + KEEP);
	uint64_t off = 0;
	size_t kept = 0;
	int r = -EINVAL;

	if (!buf)
		return -ENOMEM;
	while (off < f->size) {
		size_t n = f->size - off < CHUNK ? (size_t)(f->size - off) : CHUNK;
		const uint8_t *p;
		size_t have;

		if (boot_file_pread(f, off, buf + kept, n) < 0)
			break;
		have = kept + n;
		off += n;
		p = memmem(buf, have, BANNER, strlen(BANNER));
		/* A banner near the end may be cut off: it is looked at again
		 * with the next chunk, from the tail kept below. */
		if (p && ((size_t)(p - buf) + KEEP <= have || off >= f->size)) {
			p += strlen(BANNER);
			r = first_word(p, have - (size_t)(p - buf), out, len);
			break;
		}
		kept = have < KEEP ? have : KEEP;
		memmove(buf, buf + have - kept, kept);
	}
	free(buf);
	return r;
}

int boot_kernel_release(const char *path, char *out, size_t len, struct kv_err *e)
{
	struct boot_file f;
	int r;

	r = boot_file_open(path, &f, e);
	if (r)
		return r;
	r = -EINVAL;
	if (pvh_looks_like(&f)) {
		r = elf_release(&f, out, len);
	} else if (bz_looks_like(&f) && f.head_len >= 0x210) {
		uint16_t off, version;

		memcpy(&version, f.head + 0x206, sizeof(version));
		memcpy(&off, f.head + 0x20e, sizeof(off));
		/* The field exists from protocol 2.00 on; 0 means none. */
		if (version >= 0x200 && off && 0x200u + off < f.head_len)
			r = first_word(f.head + 0x200 + off, f.head_len - 0x200 - off, out, len);
	}
	boot_file_free(&f);
	if (r)
		return kv_err_set(e, r, "%s: cannot read the kernel's release (no kernel_version in the "
				  "bzImage header, no \"" BANNER "\" banner in the ELF): give its module "
				  "tree with --modules DIR", path);
	return 0;
}
