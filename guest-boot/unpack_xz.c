/* Unpacking a bzImage's XZ payload into the ELF vmlinux in the host,
 * so the guest can start at the PVH entry and skip its own (slow,
 * emulated) decompressor. The result is cached (kernel_cache.h). */
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
#include "kernel_cache.h"
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

/* The payload must lie inside the protected-mode part of the file and
 * be XZ. Reads only its first bytes and the size trailer after it. */
static int payload_locate(struct boot_file *f, const struct bz_info *bz, uint64_t *off,
			  uint32_t *hint, struct kv_err *e)
{
	uint64_t end;
	uint8_t magic[6];
	int r;

	*off = (uint64_t)bz->pm_offset + bz->payload_offset;
	end = *off + bz->payload_length;
	if (bz->payload_length <= SIZE_TRAILER)
		return kv_err_set(e, -EINVAL, "%s: no compressed payload (payload_length %u): "
				  "boot it with --boot bzimage", f->path, bz->payload_length);
	if (end > (uint64_t)bz->pm_offset + bz->pm_size)
		return kv_err_set(e, -EINVAL, "%s: payload at 0x%llx+0x%x lies past the end of the "
				  "kernel: truncated?", f->path, (unsigned long long)*off,
				  bz->payload_length);
	memset(magic, 0, sizeof(magic));
	r = boot_file_copy(f, *off, magic, bz->payload_length < sizeof(magic) ?
			   bz->payload_length : sizeof(magic), "the payload", e);
	if (!r)
		r = boot_file_copy(f, end - SIZE_TRAILER, hint, SIZE_TRAILER, "the payload size", e);
	if (r)
		return r;
	if (has_magic(magic, sizeof(magic), &xz_magic))
		return 0;
	for (size_t i = 0; i < sizeof(other_magic) / sizeof(other_magic[0]); i++) {
		if (has_magic(magic, sizeof(magic), &other_magic[i]))
			return kv_err_set(e, -ENOTSUP, "%s: payload is %s-compressed, kvmini unpacks "
					  "only XZ: boot it with --boot bzimage", f->path,
					  other_magic[i].name);
	}
	return kv_err_set(e, -ENOTSUP, "%s: payload has an unknown compression format: boot it "
			  "with --boot bzimage", f->path);
}

/* The output buffer of xz_decode. */
struct outbuf {
	uint8_t *data;
	size_t cap;
};

static int grow(struct outbuf *out, lzma_stream *s)
{
	size_t cap = out->cap ? out->cap * 2 : 64 * MiB;
	uint8_t *n;

	if (out->cap >= UNPACK_MAX_SIZE)
		return -EFBIG;
	if (cap > UNPACK_MAX_SIZE)
		cap = UNPACK_MAX_SIZE;
	n = realloc(out->data, cap);
	if (!n)
		return -ENOMEM;
	s->next_out = n + s->total_out; /* output is contiguous from the start */
	s->avail_out += cap - out->cap;
	out->data = n;
	out->cap = cap;
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

/* Decodes one XZ stream (@in_len bytes, the size trailer excluded) into
 * an in-memory boot file. @hint: the size the trailer announces. */
static int xz_decode(const char *path, const uint8_t *in, size_t in_len, uint32_t hint,
		     struct boot_file *out, struct kv_err *e)
{
	lzma_stream s = LZMA_STREAM_INIT;
	struct outbuf buf = { NULL, 0 };
	lzma_ret ret = LZMA_OK;
	int r = 0;

	if (lzma_stream_decoder(&s, XZ_MEMLIMIT, 0) != LZMA_OK)
		return kv_err_set(e, -ENOMEM, "%s: cannot start the XZ decoder", path);
	s.next_in = in;
	s.avail_in = in_len;
	/* Start with what the trailer promises, if it is plausible. */
	if (hint && hint <= UNPACK_MAX_SIZE) {
		buf.data = malloc(hint);
		buf.cap = buf.data ? hint : 0;
		s.next_out = buf.data;
		s.avail_out = buf.cap;
	}
	for (;;) {
		if (s.avail_out == 0 && (r = grow(&buf, &s)) != 0)
			break;
		ret = lzma_code(&s, LZMA_FINISH);
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			r = -EINVAL;
			break;
		}
	}
	lzma_end(&s);
	if (r == -EFBIG)
		kv_err_set(e, r, "%s: payload unpacks to more than %llu MiB", path,
			   UNPACK_MAX_SIZE / MiB);
	else if (r == -ENOMEM)
		kv_err_set(e, r, "%s: no memory to unpack the kernel", path);
	else if (r)
		kv_err_set(e, r, "%s: XZ payload is corrupt (%s): boot it with --boot bzimage",
			   path, lzma_problem(ret));
	else if (hint && hint != s.total_out)
		LOG_WARN("%s: payload unpacked to %llu bytes, its trailer says %u", path,
			 (unsigned long long)s.total_out, hint);
	if (r) {
		free(buf.data);
		return r;
	}
	boot_file_from_memory(out, path, buf.data, (size_t)s.total_out);
	return 0;
}

/* Opens cache entry @content as @out; a hit must be an ELF file of the
 * size the payload announces. */
static bool cache_open(const char *dir, const char *content, uint32_t hint,
		       struct boot_file *out)
{
	char path[PATH_MAX];
	struct kv_err ignored;

	if (snprintf(path, sizeof(path), "%s/%s", dir, content) >= (int)sizeof(path) ||
	    access(path, F_OK) < 0)
		return false;
	if (boot_file_open(path, out, &ignored) < 0)
		return false;
	if (pvh_looks_like(out) && (!hint || out->size == hint))
		return true;
	LOG_WARN("%s: cached kernel is not a valid ELF vmlinux: unpacking again", path);
	boot_file_free(out);
	return false;
}

/* Looks @bz_file up in the cache in @dir: through its key record
 * (nothing of the file read), else through its content hash (the whole
 * file read once; a key record is written for next time). Fills
 * @content with the entry's name (empty when it cannot be named); true
 * on a hit, with the entry open in @out. */
static bool cache_find(struct boot_file *bz_file, const char *dir, uint32_t hint,
		       char *content, struct boot_file *out)
{
	char key[KCACHE_NAME_MAX], tried[KCACHE_NAME_MAX] = "";
	struct kv_err e;
	uint64_t crc;

	content[0] = '\0';
	if (kcache_key_name(&bz_file->st, key, sizeof(key)))
		key[0] = '\0';
	if (key[0] && !kcache_key_read(dir, key, tried, sizeof(tried))) {
		if (cache_open(dir, tried, hint, out)) {
			snprintf(content, KCACHE_NAME_MAX, "%s", tried);
			LOG_DEBUG("%s: cached vmlinux %s/%s (by file identity)", bz_file->path, dir,
				  content);
			return true;
		}
	}
	/* A new key (or its entry went away): name the content by its hash. */
	if (kcache_hash(bz_file, &crc, &e) ||
	    kcache_content_name(crc, bz_file->size, content, KCACHE_NAME_MAX)) {
		content[0] = '\0';
		return false;
	}
	if (!strcmp(content, tried) || !cache_open(dir, content, hint, out))
		return false;
	LOG_DEBUG("%s: cached vmlinux %s/%s (by content)", bz_file->path, dir, content);
	if (key[0] && kcache_key_write(dir, key, content))
		LOG_DEBUG("%s: cannot write the cache's key record", dir);
	return true;
}

int boot_unpack_bzimage(struct boot_file *bz_file, const struct bz_info *bz,
			const char *cache_dir, struct boot_file *out, struct kv_err *e)
{
	char content[KCACHE_NAME_MAX] = "", key[KCACHE_NAME_MAX];
	uint8_t *payload;
	uint64_t off;
	uint32_t hint;
	size_t len;
	int r;

	r = payload_locate(bz_file, bz, &off, &hint, e);
	if (r)
		return r;
	if (cache_dir && cache_find(bz_file, cache_dir, hint, content, out)) {
		out->path = bz_file->path; /* errors name the bzImage, not the cache */
		return 0;
	}
	len = bz->payload_length - SIZE_TRAILER;
	payload = malloc(len);
	if (!payload)
		return kv_err_set(e, -ENOMEM, "%s: no memory for the payload", bz_file->path);
	r = boot_file_copy(bz_file, off, payload, len, "the payload", e);
	if (!r)
		r = xz_decode(bz_file->path, payload, len, hint, out, e);
	free(payload);
	if (r)
		return r;
	if (!pvh_looks_like(out)) {
		boot_file_free(out);
		return kv_err_set(e, -EINVAL, "%s: unpacked payload is not an ELF vmlinux: boot it "
				  "with --boot bzimage", bz_file->path);
	}
	if (content[0]) {
		r = kcache_content_write(cache_dir, content, out->data, out->size);
		if (!r && !kcache_key_name(&bz_file->st, key, sizeof(key)))
			r = kcache_key_write(cache_dir, key, content);
		if (r)
			LOG_WARN("cannot cache the unpacked kernel in %s: %s", cache_dir, strerror(-r));
	}
	return 0;
}
