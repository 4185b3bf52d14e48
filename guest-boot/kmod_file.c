/* One kernel module file, read whole and decompressed in the host
 * (.ko.xz with liblzma, .ko.zst with libzstd) so that the guest's init
 * only hands plain ELF to finit_module. */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "kvmini/kmods.h"

#define KMOD_FILE_MAX (64u << 20)   /* compressed or not; ext4.ko is 2 MiB */
#define KMOD_PLAIN_MAX (256u << 20) /* once decompressed */

static int read_all(const char *path, uint8_t **data, size_t *len, struct kv_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t n = 0;
	uint8_t *buf;

	if (fd < 0)
		return kv_err_set(e, -errno, "%s: cannot open the module: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > KMOD_FILE_MAX) {
		close(fd);
		return kv_err_set(e, -EINVAL, "%s: not a module file (empty, not a regular file, or over %u MiB)",
				  path, KMOD_FILE_MAX >> 20);
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return kv_err_set(e, -ENOMEM, "%s: out of memory", path);
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? -errno : -EIO;

			free(buf);
			close(fd);
			return kv_err_set(e, err, "%s: read failed: %s", path,
					  r < 0 ? strerror(-err) : "file shrank while reading");
		}
		n += (size_t)r;
	}
	close(fd);
	*data = buf;
	*len = n;
	return 0;
}

static int unxz(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	lzma_stream s = LZMA_STREAM_INIT;
	size_t cap = 0, done = 0;
	uint8_t *buf = NULL;
	lzma_ret lr;

	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = in_len;
	do {
		if (s.avail_out == 0) {
			size_t ncap = cap ? cap * 2 : in_len * 4 + 4096;
			uint8_t *nb;

			if (cap >= KMOD_PLAIN_MAX) {
				lr = LZMA_MEMLIMIT_ERROR;
				break;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				lr = LZMA_MEM_ERROR;
				break;
			}
			buf = nb;
			cap = ncap;
			s.next_out = buf + done;
			s.avail_out = cap - done;
		}
		/* LZMA_OK while there is progress; BUF_ERROR on truncated data. */
		lr = lzma_code(&s, LZMA_FINISH);
		done = (size_t)(s.next_out - buf);
	} while (lr == LZMA_OK);
	lzma_end(&s);
	if (lr != LZMA_STREAM_END) {
		free(buf);
		return lr == LZMA_MEM_ERROR ? -ENOMEM : lr == LZMA_MEMLIMIT_ERROR ? -EFBIG : -EINVAL;
	}
	*out_len = done;
	*out = buf;
	return 0;
}

static int unzstd(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer ib = { in, in_len, 0 };
	size_t cap = in_len * 4 + 4096, r = 1;
	uint8_t *buf = NULL;
	ZSTD_outBuffer ob = { NULL, 0, 0 };

	if (!ds)
		return -ENOMEM;
	ZSTD_initDStream(ds);
	while (r != 0) {
		if (ob.pos == ob.size) {
			uint8_t *nb;

			if (ob.size && cap >= KMOD_PLAIN_MAX) {
				free(buf);
				ZSTD_freeDStream(ds);
				return -EFBIG;
			}
			if (ob.size)
				cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				ZSTD_freeDStream(ds);
				return -ENOMEM;
			}
			buf = nb;
			ob.dst = buf;
			ob.size = cap;
		}
		r = ZSTD_decompressStream(ds, &ob, &ib);
		if (ZSTD_isError(r) || (r != 0 && ib.pos == ib.size && ob.pos < ob.size)) {
			free(buf);
			ZSTD_freeDStream(ds);
			return -EINVAL; /* corrupt or truncated */
		}
	}
	ZSTD_freeDStream(ds);
	*out = buf;
	*out_len = ob.pos;
	return 0;
}

int kmod_file_read(const char *path, void **data, size_t *len, struct kv_err *e)
{
	static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	static const uint8_t zst[] = { 0x28, 0xb5, 0x2f, 0xfd };
	uint8_t *raw = NULL, *plain = NULL;
	size_t raw_len = 0, plain_len = 0;
	const char *kind;
	int r;

	r = read_all(path, &raw, &raw_len, e);
	if (r)
		return r;
	if (raw_len >= 4 && !memcmp(raw, "\x7f" "ELF", 4)) {
		*data = raw;
		*len = raw_len;
		return 0;
	}
	if (raw_len >= sizeof(xz) && !memcmp(raw, xz, sizeof(xz))) {
		kind = "xz";
		r = unxz(raw, raw_len, &plain, &plain_len);
	} else if (raw_len >= sizeof(zst) && !memcmp(raw, zst, sizeof(zst))) {
		kind = "zstd";
		r = unzstd(raw, raw_len, &plain, &plain_len);
	} else {
		bool gz = raw_len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;

		free(raw);
		return kv_err_set(e, -EINVAL, "%s: %s", path, gz ?
				  "gzip-compressed modules are not supported (kvmini unpacks .ko, .ko.xz "
				  "and .ko.zst); decompress the tree with gunzip" :
				  "not a kernel module: neither ELF nor xz or zstd data");
	}
	free(raw);
	if (r)
		return kv_err_set(e, r, "%s: cannot decompress the %s data: %s", path, kind,
				  r == -EFBIG ? "larger than 256 MiB" : r == -ENOMEM ? "out of memory" :
				  "corrupt or truncated");
	if (plain_len < 4 || memcmp(plain, "\x7f" "ELF", 4)) {
		free(plain);
		return kv_err_set(e, -EINVAL, "%s: the decompressed %s data is not an ELF module", path, kind);
	}
	*data = plain;
	*len = plain_len;
	return 0;
}
