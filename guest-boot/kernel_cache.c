/* The unpacked-kernel cache: content entries named by the bzImage's
 * CRC64 and size, found through key records named by the bzImage file's
 * identity (see kernel_cache.h). Every write goes through a temp file
 * and a rename, so a concurrent kvmini sees the old file or the new one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/layout.h"
#include "kernel_cache.h"

#define HASH_CHUNK (1u << 20)

int kcache_key_name(const struct stat *st, char *buf, size_t len)
{
	int n = snprintf(buf, len, "key-%llx-%llx-%llx-%lld.%09ld-%lld.%09ld",
			 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
			 (unsigned long long)st->st_size,
			 (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
			 (long long)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);

	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int kcache_content_name(uint64_t crc, uint64_t size, char *buf, size_t len)
{
	int n = snprintf(buf, len, "vmlinux-%016llx-%llx", (unsigned long long)crc,
			 (unsigned long long)size);

	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

bool kcache_content_name_ok(const char *name)
{
	const char *p = name + 8;
	size_t digits = 0;

	if (strncmp(name, "vmlinux-", 8))
		return false;
	for (; *p && *p != '-'; p++, digits++)
		if (!strchr("0123456789abcdef", *p))
			return false;
	if (digits != 16 || *p++ != '-' || !*p)
		return false;
	for (; *p; p++)
		if (!strchr("0123456789abcdef", *p))
			return false;
	return p - name < KCACHE_NAME_MAX;
}

static int join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int kcache_key_read(const char *dir, const char *key, char *content, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, r;

	r = join(path, sizeof(path), dir, key);
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, content, len - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	if (n > 0 && content[n - 1] == '\n')
		n--;
	content[n] = '\0';
	return kcache_content_name_ok(content) ? 0 : -EINVAL;
}

/* mkdir -p: creates each missing component of @dir. */
static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = dir[i];
	}
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Writes @len bytes of @p, leaving a hole for every all-zero 4 KiB
 * block (a vmlinux is about a third zeros: loading it then reads only
 * its data), and sets the file's size. */
static int write_sparse(int fd, const uint8_t *p, size_t len)
{
	const size_t block = 4096;
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < block ? len - done : block;
		ssize_t w;

		if (p[done] == 0 && memcmp(p + done, p + done + 1, n - 1) == 0) {
			done += n;
			continue;
		}
		w = pwrite(fd, p + done, n, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes @name in @dir through a temp file and a rename; a @kernel
 * sparse and fsync'ed first, so a crash cannot leave a partial file. */
static int store(const char *dir, const char *name, const uint8_t *data, size_t len, bool kernel)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	int fd, r;

	r = mkdir_p(dir);
	if (!r)
		r = join(final, sizeof(final), dir, name);
	if (r)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", final) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	r = kernel ? write_sparse(fd, data, len) : write_all(fd, data, len);
	if (!r && fchmod(fd, 0644) < 0)
		r = -errno;
	if (!r && kernel && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, final) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int kcache_key_write(const char *dir, const char *key, const char *content)
{
	char line[KCACHE_NAME_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", content);

	if (!kcache_content_name_ok(content) || n <= 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	/* No fsync: a key record lost in a crash only costs one hash. */
	return store(dir, key, (const uint8_t *)line, (size_t)n, false);
}

int kcache_content_write(const char *dir, const char *content, const uint8_t *data, size_t len)
{
	return store(dir, content, data, len, true);
}

int kcache_hash(struct boot_file *f, uint64_t *crc, struct kv_err *e)
{
	uint8_t *buf = malloc(HASH_CHUNK);
	uint64_t c = 0;
	int r = 0;

	if (!buf)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", f->path);
	for (uint64_t off = 0; off < f->size && !r; off += HASH_CHUNK) {
		size_t n = f->size - off < HASH_CHUNK ? (size_t)(f->size - off) : HASH_CHUNK;

		r = boot_file_copy(f, off, buf, n, "the kernel", e);
		if (!r)
			c = lzma_crc64(buf, n, c);
	}
	free(buf);
	if (!r)
		*crc = c;
	return r;
}
