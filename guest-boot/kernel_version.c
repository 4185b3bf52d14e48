/* The release of a guest kernel ("6.1.0-57-amd64"), which names its
 * module tree: from a bzImage's setup header (boot protocol field
 * kernel_version, a pointer to "6.1.0-57-amd64 (builder) #1 SMP ...") or
 * from an ELF vmlinux's banner ("Linux version 6.1.0-57-amd64 ..."). */
#include <errno.h>
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

int boot_kernel_release(const char *path, char *out, size_t len, struct kv_err *e)
{
	struct boot_file f;
	int r = -EINVAL;

	r = boot_file_read(path, &f, e);
	if (r)
		return r;
	r = -EINVAL;
	if (pvh_looks_like(&f)) {
		const uint8_t *p = memmem(f.data, f.size, BANNER, strlen(BANNER));

		if (p) {
			p += strlen(BANNER);
			r = first_word(p, f.size - (size_t)(p - f.data), out, len);
		}
	} else if (bz_looks_like(&f) && f.size >= 0x210) {
		uint16_t off, version;

		memcpy(&version, f.data + 0x206, sizeof(version));
		memcpy(&off, f.data + 0x20e, sizeof(off));
		/* The field exists from protocol 2.00 on; 0 means none. */
		if (version >= 0x200 && off && 0x200u + off < f.size)
			r = first_word(f.data + 0x200 + off, f.size - 0x200 - off, out, len);
	}
	boot_file_free(&f);
	if (r)
		return kv_err_set(e, r, "%s: cannot read the kernel's release (no kernel_version in the "
				  "bzImage header, no \"" BANNER "\" banner in the ELF): give its module "
				  "tree with --modules DIR", path);
	return 0;
}
