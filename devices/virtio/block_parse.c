/* virtio-blk request parsing (virtio_blk_parse.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <linux/virtio_blk.h>

#include "kvmini/virtio_blk_parse.h"

static bool range_ok(uint64_t sector, uint64_t nr_sectors, uint64_t capacity)
{
	return sector <= capacity && nr_sectors <= capacity - sector;
}

/* The data of an OUT request: the readable bytes after the header. */
static void trim_out(struct vq_chain *c, struct blk_request *p)
{
	size_t skip = BLK_HDR_LEN;
	unsigned i = 0;

	while (i < c->nr_out && skip >= c->iov[i].iov_len)
		skip -= c->iov[i++].iov_len;
	if (i < c->nr_out) {
		c->iov[i].iov_base = (uint8_t *)c->iov[i].iov_base + skip;
		c->iov[i].iov_len -= skip;
	}
	p->data = c->iov + i;
	p->nr_data = c->nr_out - i;
}

/* The data of an IN request: the writable bytes before the status. */
static void trim_in(struct vq_chain *c, struct blk_request *p)
{
	struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];

	last->iov_len--;
	p->data = c->iov + c->nr_out;
	p->nr_data = c->nr_in - (last->iov_len == 0);
}

static int parse_segments(const struct vq_chain *c, uint64_t capacity, uint32_t type,
			  struct blk_discard_seg *segs, unsigned *nr, const char **why)
{
	size_t len = c->out_len - BLK_HDR_LEN;

	if (len == 0 || len % sizeof(*segs) || len / sizeof(*segs) > BLK_DISCARD_SEG_MAX) {
		*why = "bad discard/write-zeroes segment count";
		return VIRTIO_BLK_S_IOERR;
	}
	unsigned n = (unsigned)(len / sizeof(*segs));

	if (vq_chain_read(c, BLK_HDR_LEN, segs, len) != len) {
		*why = "short segment list";
		return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < n; i++) {
		segs[i].sector = le64toh(segs[i].sector);
		segs[i].num_sectors = le32toh(segs[i].num_sectors);
		segs[i].flags = le32toh(segs[i].flags);
		if (segs[i].flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) {
			*why = "reserved segment flags set";
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (type == VIRTIO_BLK_T_DISCARD && segs[i].flags) {
			*why = "unmap flag on a discard";
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (segs[i].num_sectors > BLK_DISCARD_SECTORS_MAX ||
		    !range_ok(segs[i].sector, segs[i].num_sectors, capacity)) {
			*why = "segment beyond the end of the disk or too long";
			return VIRTIO_BLK_S_IOERR;
		}
	}
	*nr = n;
	return VIRTIO_BLK_S_OK;
}

/* IN and OUT: whole sectors inside the disk, under 4 GiB; then where
 * the data is. */
static int parse_data(struct vq_chain *c, uint64_t capacity, struct blk_request *p,
		      const char **why)
{
	if (p->data_len % BLK_SECTOR) {
		*why = "data length not a multiple of 512";
		return VIRTIO_BLK_S_IOERR;
	}
	if (p->data_len >= UINT32_MAX) {
		*why = "request of 4 GiB or more";
		return VIRTIO_BLK_S_IOERR;
	}
	if (!range_ok(p->sector, p->data_len / BLK_SECTOR, capacity)) {
		*why = "sectors beyond the end of the disk";
		return VIRTIO_BLK_S_IOERR;
	}
	if (p->type == VIRTIO_BLK_T_IN) {
		trim_in(c, p);
		p->used_len = (uint32_t)p->data_len + 1;
	} else {
		trim_out(c, p);
	}
	return VIRTIO_BLK_S_OK;
}

int blk_parse(struct vq_chain *c, uint64_t capacity, bool readonly, bool discard,
	      struct blk_request *p, struct blk_discard_seg *segs, const char **why)
{
	struct virtio_blk_outhdr h;

	memset(p, 0, sizeof(*p));
	*why = NULL;
	if (c->in_len == 0) {
		*why = "no writable byte for the status";
		return -EINVAL;
	}
	const struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];

	p->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	p->used_len = 1;
	if (c->out_len < BLK_HDR_LEN || vq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
		*why = "request header shorter than 16 bytes";
		return VIRTIO_BLK_S_IOERR;
	}
	p->type = le32toh(h.type);
	p->sector = le64toh(h.sector);
	size_t out_data = c->out_len - BLK_HDR_LEN, in_data = c->in_len - 1;

	switch (p->type) {
	case VIRTIO_BLK_T_IN:
		if (out_data) {
			*why = "read request with readable data after the header";
			return VIRTIO_BLK_S_IOERR;
		}
		p->data_len = in_data;
		break;
	case VIRTIO_BLK_T_OUT:
		if (in_data) {
			*why = "write request with writable buffers before the status";
			return VIRTIO_BLK_S_IOERR;
		}
		if (readonly) {
			*why = "write to a read-only disk";
			return VIRTIO_BLK_S_IOERR;
		}
		p->data_len = out_data;
		break;
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		p->data_len = in_data < BLK_ID_LEN ? in_data : BLK_ID_LEN;
		p->used_len = (uint32_t)p->data_len + 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!discard || readonly) {
			*why = "discard/write-zeroes not offered";
			return VIRTIO_BLK_S_UNSUPP;
		}
		return parse_segments(c, capacity, p->type, segs, &p->nr_segs, why);
	default:
		*why = "unknown request type";
		return VIRTIO_BLK_S_UNSUPP;
	}
	return parse_data(c, capacity, p, why);
}
