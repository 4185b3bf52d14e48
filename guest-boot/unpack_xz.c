/* Unpacking a bzImage's XZ payload into the ELF vmlinux in the host,
 * so the guest can start at the PVH entry and skip its own (slow,
 * emulated) decompressor. The result is cached by bzImage content. */
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
#include "kvmini/log.h"
#include "elf_pvh.h"
#include "unpack_xz.h"

#define SIZE_TRAILER 4 /* Kbuild appends the uncompressed size, LE32 */
/* Kbuild's XZ uses a 32 MiB dictionary at most; a header asking for far
 * more is not a kernel, and must not make us allocate gigabytes. */
#define XZ_MEMLIMIT (256 * MiB)

struct comp_magic {
	const char *name;
	size_t len;
	uint8_t bytes[6];
};

static const struct comp_magic xz_magic = { "XZ", 6, { 0xfd, '7', 'z', 'X', 'Z', 0 } };

/* The other compressions Kbuild can produce, to name them in errors. */
static const struct comp_magic other_magic[] = {
	{ "gzip", 2, { 0x1f, 0x8b } },
	{ "bzip2", 3, { 'B', 'Z', 'h' } },
	{ "LZMA", 3, { 0x5d, 0x00, 0x00 } },
	{ "LZO", 4, { 0x89, 'L', 'Z', 'O' } },
	{ "LZ4", 4, { 0x02, 0x21, 0x4c, 0x18 } },
	{ "zstd", 4, { 0x28, 0xb5, 0x2f, 0xfd } },
};

static bool has_magic(const uint8_t *p, size_t len, const struct comp_magic *m)
{
	return len >= m->len && memcmp(p, m->bytes, m->len) == 0;
}

/* The payload must lie inside the protected-mode part of the file. */
static int payload_locate(const struct boot_file *f, const struct bz_info *bz,
			  const uint8_t **p, size_t *len, struct kv_err *e)
{
	uint64_t off = (uint64_t)bz->pm_offset + bz->payload_offset;
	uint64_t end = off + bz->payload_length;

	if (bz->payload_length <= SIZE_TRAILER)
		return kv_err_set(e, -EINVAL, "%s: no compressed payload (payload_length %u): "
				  "boot it with --boot bzimage", f->path, bz->payload_length);
	if (end > (uint64_t)bz->pm_offset + bz->pm_size)
		return kv_err_set(e, -EINVAL, "%s: payload at 0x%llx+0x%x lies past the end of the "
				  "kernel: truncated?", f->path, (unsigned long long)off,
				  bz->payload_length);
	*p = f->data + off;
	*len = bz->payload_length;
	if (has_magic(*p, *len, &xz_magic))
		return 0;
	for (size_t i = 0; i < sizeof(other_magic) / sizeof(other_magic[0]); i++) {
		if (has_magic(*p, *len, &other_magic[i]))
			return kv_err_set(e, -ENOTSUP, "%s: payload is %s-compressed, kvmini unpacks "
					  "only XZ: boot it with --boot bzimage", f->path,
					  other_magic[i].name);
	}
	return kv_err_set(e, -ENOTSUP, "%s: payload has an unknown compression format: boot it "
			  "with --boot bzimage", f->path);
}

static uint32_t payload_size_hint(const uint8_t *p, size_t len)
{
	uint32_t v;

	memcpy(&v, p + len - SIZE_TRAILER, sizeof(v));
	return v;
}

static int grow(struct boot_file *out, lzma_stream *s)
{
	size_t cap = out->size ? out->size * 2 : 64 * MiB;
	uint8_t *n;

	if (out->size >= UNPACK_MAX_SIZE)
		return -EFBIG;
	if (cap > UNPACK_MAX_SIZE)
		cap = UNPACK_MAX_SIZE;
	n = realloc(out->data, cap);
	if (!n)
		return -ENOMEM;
	s->next_out = n + s->total_out; /* output is contiguous from the start */
	s->avail_out += cap - out->size;
	out->data = n;
	out->size = cap;
	return 0;
}

static const char *lzma_problem(lzma_ret ret)
{
	switch (ret) {
	case LZMA_BUF_ERROR:      return "the stream is truncated";
	case LZMA_DATA_ERROR:     return "the compressed data is corrupt";
	case LZMA_FORMAT_ERROR:   return "the stream header is corrupt";
	case LZMA_OPTIONS_ERROR:  return "it uses unsupported options";
	case LZMA_MEMLIMIT_ERROR: return "it needs too much decoder memory";
	default:                  return "liblzma failed";
	}
}

/* Decodes one XZ stream; the size trailer after it is left unread. */
static int xz_decode(const char *path, const uint8_t *in, size_t in_len,
		     struct boot_file *out, struct kv_err *e)
{
	lzma_stream s = LZMA_STREAM_INIT;
	uint32_t hint = payload_size_hint(in, in_len);
	lzma_ret ret = LZMA_OK;
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->path = path;
	if (lzma_stream_decoder(&s, XZ_MEMLIMIT, 0) != LZMA_OK)
		return kv_err_set(e, -ENOMEM, "%s: cannot start the XZ decoder", path);
	s.next_in = in;
	s.avail_in = in_len;
	/* Start with what the trailer promises, if it is plausible. */
	if (hint && hint <= UNPACK_MAX_SIZE) {
		out->data = malloc(hint);
		out->size = out->data ? hint : 0;
		s.next_out = out->data;
		s.avail_out = out->size;
	}
	for (;;) {
		if (s.avail_out == 0 && (r = grow(out, &s)) != 0)
			break;
		ret = lzma_code(&s, LZMA_FINISH);
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			r = -EINVAL;
			break;
		}
	}
	out->size = s.total_out;
	lzma_end(&s);
	if (r == -EFBIG)
		kv_err_set(e, r, "%s: payload unpacks to more than %llu MiB", path,
			   UNPACK_MAX_SIZE / MiB);
	else if (r == -ENOMEM)
		kv_err_set(e, r, "%s: no memory to unpack the kernel", path);
	else if (r)
		kv_err_set(e, r, "%s: XZ payload is corrupt (%s): boot it with --boot bzimage",
			   path, lzma_problem(ret));
	else if (hint && hint != out->size)
		LOG_WARN("%s: payload unpacked to %zu bytes, its trailer says %u", path,
			 out->size, hint);
	if (r)
		boot_file_free(out);
	return r;
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

/* Writes through a temp file and rename, so a reader never sees a
 * partial file; fsync first, so a crash cannot leave one either. */
static int cache_store(const char *dir, const char *final, const struct boot_file *v)
{
	char tmp[PATH_MAX];
	int fd, r;

	r = mkdir_p(dir);
	if (r)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", final) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	r = write_all(fd, v->data, v->size);
	if (!r && fchmod(fd, 0644) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, final) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

/* A cache hit must be an ELF file of the size the payload announces. */
static bool cache_load(const char *path, uint32_t hint, struct boot_file *out)
{
	struct kv_err ignored;

	if (access(path, F_OK) < 0)
		return false;
	if (boot_file_read(path, out, &ignored) < 0)
		return false;
	if (pvh_looks_like(out) && (!hint || out->size == hint))
		return true;
	LOG_WARN("%s: cached kernel is not a valid ELF vmlinux: unpacking again", path);
	boot_file_free(out);
	return false;
}

int boot_unpack_bzimage(const struct boot_file *bz_file, const struct bz_info *bz,
		   const char *cache_dir, struct boot_file *out, struct kv_err *e)
{
	char cached[PATH_MAX] = "";
	const uint8_t *payload = NULL;
	size_t len = 0;
	int r;

	r = payload_locate(bz_file, bz, &payload, &len, e);
	if (r)
		return r;
	if (cache_dir) {
		/* Keyed by content: a rebuilt kernel at the same path misses. */
		unsigned long long crc = (unsigned long long)lzma_crc64(bz_file->data,
									 bz_file->size, 0);

		if (snprintf(cached, sizeof(cached), "%s/vmlinux-%016llx-%zx", cache_dir, crc,
			     bz_file->size) >= (int)sizeof(cached))
			cached[0] = '\0';
		if (cached[0] && cache_load(cached, payload_size_hint(payload, len), out)) {
			out->path = bz_file->path; /* not the local buffer */
			LOG_DEBUG("%s: using cached vmlinux %s", bz_file->path, cached);
			return 0;
		}
	}
	r = xz_decode(bz_file->path, payload, len, out, e);
	if (r)
		return r;
	if (!pvh_looks_like(out)) {
		boot_file_free(out);
		return kv_err_set(e, -EINVAL, "%s: unpacked payload is not an ELF vmlinux: boot it "
				  "with --boot bzimage", bz_file->path);
	}
	if (cached[0]) {
		r = cache_store(cache_dir, cached, out);
		if (r)
			LOG_WARN("cannot cache the unpacked kernel in %s: %s", cache_dir, strerror(-r));
	}
	return 0;
}
