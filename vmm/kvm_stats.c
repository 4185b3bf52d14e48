/* KVM's binary statistics: parse a stats fd's header and descriptors
 * once, read its data block at exit (see kvm_stats.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kvmini/kvm_stats.h"

/* The fixed part of a descriptor; its name follows (header.name_size bytes). */
struct desc_head {
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint32_t offset;
	uint32_t bucket_size;
};
_Static_assert(sizeof(struct desc_head) == sizeof(struct kvm_stats_desc),
	       "descriptor layout as in linux/kvm.h");

int kvm_stats_parse(const void *buf, size_t len, struct kvm_stats_schema *s, struct kv_err *e)
{
	const uint8_t *p = buf;
	struct kvm_stats_header h;
	uint64_t stride, end;

	memset(s, 0, sizeof(*s));
	if (len < sizeof(h))
		return kv_err_set(e, -EINVAL, "KVM stats: %zu bytes, shorter than the header", len);
	memcpy(&h, p, sizeof(h));
	if (h.name_size == 0 || h.name_size > 4096)
		return kv_err_set(e, -EINVAL, "KVM stats: name size %u", h.name_size);
	if (h.num_desc > KVM_STATS_MAX_DESC)
		return kv_err_set(e, -EINVAL, "KVM stats: %u statistics, at most %d are read",
				  h.num_desc, KVM_STATS_MAX_DESC);
	stride = sizeof(struct desc_head) + (uint64_t)h.name_size;
	end = (uint64_t)h.desc_offset + stride * h.num_desc;
	if (end > len)
		return kv_err_set(e, -EINVAL, "KVM stats: descriptors [0x%x, 0x%llx) past the %zu "
				  "bytes read", h.desc_offset, (unsigned long long)end, len);
	if (h.data_offset < sizeof(h))
		return kv_err_set(e, -EINVAL, "KVM stats: data block at 0x%x", h.data_offset);
	for (uint32_t i = 0; i < h.num_desc; i++) {
		const uint8_t *d = p + h.desc_offset + stride * i;
		struct kvm_stat_desc *out = &s->desc[i];
		struct desc_head dh;
		size_t nlen;
		uint64_t vend;

		memcpy(&dh, d, sizeof(dh));
		nlen = strnlen((const char *)d + sizeof(dh), h.name_size);
		if (nlen == 0 || nlen == h.name_size || nlen >= KVM_STATS_NAME_MAX)
			return kv_err_set(e, -EINVAL, "KVM stats: statistic %u has a name of %zu bytes",
					  i, nlen);
		vend = (uint64_t)dh.offset + 8ULL * dh.size;
		if (dh.size == 0 || dh.offset % 8 || vend > KVM_STATS_MAX_DATA)
			return kv_err_set(e, -EINVAL, "KVM stats: statistic %u (%.*s): %u values at "
					  "0x%x", i, (int)nlen, (const char *)d + sizeof(dh),
					  dh.size, dh.offset);
		memcpy(out->name, d + sizeof(dh), nlen);
		out->name[nlen] = '\0';
		out->flags = dh.flags;
		out->size = dh.size;
		out->offset = dh.offset;
		if (vend > s->data_len)
			s->data_len = (uint32_t)vend;
	}
	s->n = h.num_desc;
	s->data_offset = h.data_offset;
	return 0;
}

bool kvm_stats_is_scalar(const struct kvm_stat_desc *d)
{
	uint32_t type = d->flags & KVM_STATS_TYPE_MASK;

	return d->size == 1 && (type == KVM_STATS_TYPE_CUMULATIVE ||
				type == KVM_STATS_TYPE_INSTANT || type == KVM_STATS_TYPE_PEAK);
}

uint64_t kvm_stats_value(const struct kvm_stats_schema *s, unsigned i, const void *data,
			 size_t len)
{
	uint64_t v;

	if (i >= s->n || (uint64_t)s->desc[i].offset + sizeof(v) > len)
		return 0;
	memcpy(&v, (const uint8_t *)data + s->desc[i].offset, sizeof(v));
	return v;
}

int kvm_stats_find(const struct kvm_stats_schema *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->desc[i].name, name))
			return (int)i;
	return -1;
}

/* Reads exactly @len bytes at @off. pread, not lseek and read: a stats
 * fd's file position cannot be moved (its llseek is a no-op), only read
 * at an explicit offset (KVM marks it FMODE_PREAD). */
static int read_at(int fd, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int kvm_stats_open(struct kvm_stats_src *src, int kvm_obj_fd, struct kv_err *e)
{
	struct kvm_stats_header h;
	uint8_t *meta = NULL;
	int r;

	memset(src, 0, sizeof(*src));
	src->fd = ioctl(kvm_obj_fd, KVM_GET_STATS_FD, NULL);
	if (src->fd < 0) {
		r = -errno;
		src->fd = -1;
		return kv_err_set(e, r, "KVM_GET_STATS_FD: %s", strerror(-r));
	}
	r = read_at(src->fd, 0, &h, sizeof(h));
	if (!r && (h.data_offset < sizeof(h) || h.data_offset > (1u << 20)))
		r = -EINVAL;
	if (!r) {
		meta = malloc(h.data_offset);
		r = meta ? read_at(src->fd, 0, meta, h.data_offset) : -ENOMEM;
	}
	if (r) {
		kv_err_set(e, r, "KVM stats: cannot read the header: %s", strerror(-r));
	} else {
		r = kvm_stats_parse(meta, h.data_offset, &src->schema, e);
		if (!r) {
			src->data = calloc(1, src->schema.data_len ? src->schema.data_len : 1);
			if (!src->data)
				r = kv_err_set(e, -ENOMEM, "KVM stats: out of memory");
		}
	}
	free(meta);
	if (r)
		kvm_stats_close(src);
	return r;
}

int kvm_stats_read(struct kvm_stats_src *src)
{
	if (src->fd < 0)
		return -EBADF;
	return read_at(src->fd, src->schema.data_offset, src->data, src->schema.data_len);
}

void kvm_stats_close(struct kvm_stats_src *src)
{
	if (src->fd >= 0)
		close(src->fd);
	free(src->data);
	src->fd = -1;
	src->data = NULL;
}
