/* guest-boot/kernel_cache.c: the cache of vmlinux files unpacked from
 * bzImages (private to guest-boot/ and its unit tests).
 *
 * An unpacked kernel is stored once per bzImage content, as
 * "vmlinux-<crc64>-<size>" (the CRC64 and size of the whole bzImage).
 * Finding it must not cost a read of the bzImage on every boot, so a
 * small key record "key-<dev>-<ino>-<size>-<mtime>-<ctime>", named after
 * the bzImage file's identity, holds the name of its content entry. A
 * boot whose key record exists reads nothing of the bzImage but its
 * header; when the key changes (the file was replaced, rewritten or
 * touched: ctime moves with every change and cannot be set back), the
 * content hash is computed once and a new key record written. */
#ifndef KVMINI_GUEST_BOOT_KERNEL_CACHE_H
#define KVMINI_GUEST_BOOT_KERNEL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "kvmini/err.h"
#include "boot_file.h"

#define KCACHE_NAME_MAX 128

/* The key record's name for a file with status @st. */
int kcache_key_name(const struct stat *st, char *buf, size_t len) KV_MUST_CHECK;
/* The content entry's name for a bzImage of @size bytes with CRC64 @crc. */
int kcache_content_name(uint64_t crc, uint64_t size, char *buf, size_t len) KV_MUST_CHECK;
/* True when @name is a well-formed content entry name (no path). */
bool kcache_content_name_ok(const char *name);

/* Reads key record @key in @dir into @content (a checked content name).
 * -ENOENT when there is none, -EINVAL when it is malformed. */
int kcache_key_read(const char *dir, const char *key, char *content, size_t len) KV_MUST_CHECK;
/* Writes key record @key -> @content (atomically: temp file and rename). */
int kcache_key_write(const char *dir, const char *key, const char *content) KV_MUST_CHECK;
/* Stores @len bytes of @data as entry @content (temp file, fsync,
 * rename: a reader never sees a partial file). Creates @dir. */
int kcache_content_write(const char *dir, const char *content, const uint8_t *data,
			 size_t len) KV_MUST_CHECK;

/* CRC64 (liblzma's) of the whole of @f, read in chunks. */
int kcache_hash(struct boot_file *f, uint64_t *crc, struct kv_err *e) KV_MUST_CHECK;

#endif
