/* Fuzz target: virtio-blk request handling (devices/virtio/block.c and
 * block_backend.c) against an in-memory disk (a memfd opened through
 * /proc/self/fd), with the real virtio core and synchronous I/O so a
 * run is deterministic. The input negotiates features, then posts
 * requests shaped like a driver's (header, data, status) whose type,
 * sector, segment sizes and directions it chooses, pokes the rings,
 * kicks, reads and writes the config space and resets the device. */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/virtio_blk.h"
#include "fuzz_common.h"
#include "../../devices/virtio/block_internal.h"

#define DISK_SIZE (64 * 1024)

static struct fr r;
static int disk_fd[3] = { -1, -1, -1 }; /* one disk each: they flock their image */
/* Read-write, read-only and snapshot devices, created once: creating
 * one per input costs an io_setup/io_destroy pair (an RCU grace period,
 * tens of ms). Each input starts with a device reset. */
static struct virtio_dev devs[3];

void fuzz_init(void)
{
	fr_init(&r);
	/* Snapshot overlays go to the tmpfs under /dev/shm when there is one. */
	if (access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	for (unsigned i = 0; i < 3; i++) {
		struct virtio_blk_cfg cfg = { .readonly = i == 1, .snapshot = i == 2, .index = i };
		struct kv_err e = { 0 };
		char path[64];

		disk_fd[i] = memfd_create("fuzz-disk", MFD_CLOEXEC);
		if (disk_fd[i] < 0 || ftruncate(disk_fd[i], DISK_SIZE))
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd[i]);
		cfg.path = path;

		if (virtio_blk_create(&cfg, &r.gm, NULL, &devs[i], &e)) {
			fprintf(stderr, "fuzz_blk: %s\n", e.msg);
			abort();
		}
		blk_use_sync_io(&devs[i]);
	}
}

static const uint32_t types[] = {
	VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
	VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
};

/* One request as a driver builds it, bent by the input. */
static void post_request(struct fz *f, bool indirect)
{
	struct fr_seg s[8];
	unsigned n = 0;
	uint8_t t = fz_u8(f), shape = fz_u8(f);
	uint32_t type = t < 0xf0 ? types[t % 6] : fz_u32(f);
	uint64_t sector = shape & 0x80 ? fz_u64(f) : fz_u8(f);
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	unsigned nr_data = shape & 3;
	struct virtio_blk_outhdr hdr = { .type = htole32(type), .sector = htole64(sector) };
	uint64_t hgpa;

	/* The header, whole or split in two at a point the input picks. */
	hgpa = fr_alloc(&r, sizeof(hdr));
	memcpy(fr_host(&r, hgpa), &hdr, sizeof(hdr));
	if (shape & 0x40) {
		uint32_t cut = 1 + fz_u8(f) % 15;

		s[n++] = (struct fr_seg){ hgpa, cut, false };
		s[n++] = (struct fr_seg){ hgpa + cut, (uint32_t)sizeof(hdr) - cut, false };
	} else {
		s[n++] = (struct fr_seg){ hgpa, sizeof(hdr), false };
	}
	for (unsigned i = 0; i < nr_data; i++) {
		uint8_t l = fz_u8(f);
		uint32_t len = l & 0x80 ? fz_u16(f) : (l % 9) * 512u;
		uint64_t gpa = fr_alloc(&r, len);

		/* Discard / write-zeroes segments come from the input. */
		fz_bytes(f, fr_host(&r, gpa), len < 64 ? len : 64);
		s[n++] = (struct fr_seg){ gpa, len, shape & 0x20 ? !dev_writes : dev_writes };
	}
	if (!(shape & 0x10))   /* the status byte, unless the driver forgot it */
		s[n++] = (struct fr_seg){ fr_alloc(&r, 1), shape & 0x08 ? 3 : 1, true };
	fr_post(&r, 0, s, n, indirect);
}

static void kick(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->ops->queue_notify(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	blk_reap(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	unsigned which = fz_u8(&f) % 3;
	struct virtio_dev *d = &devs[which];
	uint64_t features = fz_u64(&f);
	uint16_t qsize = (uint16_t)(1u << (fz_u8(&f) % 9));

	if (ftruncate(disk_fd[which], 0) || ftruncate(disk_fd[which], DISK_SIZE))
		abort();
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, 0);
	pthread_mutex_unlock(&d->lock);
	fr_reset(&r);
	fr_attach(&r, d, features, qsize);
	for (unsigned steps = 0; !fz_empty(&f) && steps < 256; steps++) {
		uint8_t op = fz_u8(&f);

		switch (op % 8) {
		case 0:
		case 1:
			post_request(&f, op & 0x10);
			break;
		case 2:
			kick(d);
			break;
		case 3: {
			unsigned ring = fz_u8(&f) % 3;
			uint16_t off = fz_u16(&f);

			fr_poke(&r, 0, ring, off, fz_u64(&f), 1 + (op >> 4) % 8);
			break;
		}
		case 4: {
			uint8_t buf[8];
			unsigned len = 1u << (op >> 3 & 3);
			uint32_t off = fz_u8(&f) % d->config_len;

			if (off + len > d->config_len)
				break;
			pthread_mutex_lock(&d->lock);
			if (op & 0x80)
				d->ops->config_write(d, off, buf, len);
			else
				d->ops->config_read(d, off, buf, len);
			pthread_mutex_unlock(&d->lock);
			break;
		}
		case 5:
			pthread_mutex_lock(&d->lock);
			virtio_dev_set_status(d, 0);
			pthread_mutex_unlock(&d->lock);
			fr_reset(&r);
			fr_attach(&r, d, features, qsize);
			break;
		case 6: {
			uint32_t id, len;

			while (fr_used(&r, 0, &id, &len))
				FUZZ_CHECK(r.used_poked || id < r.q[0].size);
			break;
		}
		case 7:
			blk_reap(d);
			break;
		}
	}
	kick(d);
	return 0;
}

static void seed_req(struct fw *w, uint8_t type_sel, uint8_t shape, uint8_t sector,
		     const uint8_t *lens, unsigned n)
{
	fw_u8(w, 0);
	fw_u8(w, type_sel);
	fw_u8(w, shape | (uint8_t)n);
	fw_u8(w, sector);
	for (unsigned i = 0; i < n; i++) {
		fw_u8(w, lens[i]);
		for (unsigned k = 0; k < 16; k++)
			fw_u32(w, 0);  /* 64 bytes of content: a zero segment list */
	}
}

void fuzz_write_seeds(const char *dir)
{
	static const uint8_t one[] = { 1 }, two[] = { 2, 8 };
	struct fw w = { .n = 0 };

	fw_u8(&w, 0);                           /* read-write, no snapshot */
	fw_u64(&w, ~0ull);                      /* every feature offered */
	fw_u8(&w, 4);                           /* 16 entries */
	seed_req(&w, 1, 0, 3, two, 2);          /* write sectors 3.. */
	seed_req(&w, 0, 0, 3, two, 2);          /* read them back */
	seed_req(&w, 3, 0, 0, one, 1);          /* GET_ID */
	seed_req(&w, 2, 0, 0, NULL, 0);         /* FLUSH */
	fw_u8(&w, 2);                           /* kick */
	fw_u8(&w, 6);                           /* used */
	fuzz_seed(dir, "rw", w.buf, w.n);

	w.n = 0;
	fw_u8(&w, 2);                           /* snapshot */
	fw_u64(&w, ~0ull);
	fw_u8(&w, 8);
	seed_req(&w, 4, 0, 0, one, 1);          /* DISCARD */
	seed_req(&w, 5, 0x40, 0, one, 1);       /* WRITE_ZEROES, split header */
	fw_u8(&w, 0); fw_u8(&w, 1); fw_u8(&w, 1); fw_u8(&w, 200); fw_u8(&w, 1);
	for (unsigned k = 0; k < 16; k++)
		fw_u32(&w, 0);
	fw_u8(&w, 2);
	fw_u8(&w, 5);                           /* reset */
	fw_u8(&w, 0x10); fw_u8(&w, 0); fw_u8(&w, 1); fw_u8(&w, 0); fw_u8(&w, 1);
	for (unsigned k = 0; k < 16; k++)
		fw_u32(&w, 0);
	fw_u8(&w, 2);
	fw_u8(&w, 4); fw_u8(&w, 0);             /* config read */
	fuzz_seed(dir, "snapshot_discard", w.buf, w.n);

	w.n = 0;
	fw_u8(&w, 1);                           /* read-only */
	fw_u64(&w, 0);
	fw_u8(&w, 0);
	seed_req(&w, 1, 0, 0, one, 1);
	fw_u8(&w, 2);
	fuzz_seed(dir, "readonly", w.buf, w.n);
}
