/* guest-boot/unpack_xz.c: the vmlinux inside a bzImage, unpacked in
 * the host (private to guest-boot/ and its unit tests). */
#ifndef KVMINI_GUEST_BOOT_UNPACK_XZ_H
#define KVMINI_GUEST_BOOT_UNPACK_XZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "boot_file.h"
#include "bzimage.h"

#define UNPACK_MAX_SIZE (1ULL << 30) /* refuse to inflate beyond 1 GiB */

/* Extracts the XZ-compressed ELF vmlinux from a parsed bzImage into
 * @out (free with boot_file_free): the cached file from @cache_dir when
 * there is one (kernel_cache.h), else unpacked into memory and cached.
 * @cache_dir NULL: no cache. */
int boot_unpack_bzimage(struct boot_file *bz_file, const struct bz_info *bz,
			const char *cache_dir, struct boot_file *out, struct kv_err *e) KV_MUST_CHECK;

#endif
